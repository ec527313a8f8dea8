// @ts-check
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Bare names too (`fs`, `fs/promises`), not only `node:*`: the workflow bundler resolves both to the same Node module.
const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_'));

export default defineConfig(
  {
    ignores: [
      'node_modules/',
      '.tools/',
      '.data/',
      '.build/',
      'dist/',
      'coverage/',
      'prisma/*/generated/',
      'bench/results/',
      'bench/tmp/',
      'test/replay/histories/',
      'package-lock.json',
    ],
  },

  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The two rules this config exists for: a dropped promise is a lost side effect or an unhandled rejection.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      // Default options, checksVoidReturn included: @types/express 5 types handlers as `void | Promise<void>`, so async
      // routes pass, while an async callback handed to `process.on`, `setInterval` or `forEach` is still caught.
      '@typescript-eslint/no-misused-promises': 'error',
      // `return promise` inside try skips the catch/finally; await it there (the rest may return the promise as is).
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // Statuses, steps and failure reasons are unions: a switch that misses a new member fails lint, not an order.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // `== null` is the one loose comparison worth keeping (null or undefined).
      eqeqeq: ['error', 'smart'],
      // `_`-prefixed names mark a parameter kept for its position (an Express error handler's `next`, an interface's arg).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Activities and interface implementations are `async` for their signature even when the body has nothing to await.
      '@typescript-eslint/require-await': 'off',
      // `import type` keeps Node code out of the workflow bundle; the rule makes that the habit everywhere.
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
    },
  },

  {
    // Deterministic sandbox code, and what the workflow bundles import (contracts, the bench's floor workflow): no Node, no
    // console, no value imports of activities or of the SDK's Node-side packages.
    files: ['workflows/**/*.ts', 'contracts/**/*.ts', 'lib/temporal/failure-converter.ts', 'bench/floor-workflow.ts', 'bench/floor-contract.ts'],
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'Node built-ins do not exist in the workflow sandbox; do this in an activity.',
            allowTypeImports: true,
          })),
          patterns: [
            {
              group: ['node:*'],
              message: 'Node built-ins do not exist in the workflow sandbox; do this in an activity.',
              allowTypeImports: true,
            },
            {
              group: ['**/activities', '**/activities/**'],
              message: 'Import activities as types only (`import type` or `typeof import(...)`): a value import drags Node code into the sandbox.',
              allowTypeImports: true,
            },
            {
              group: ['@temporalio/activity', '@temporalio/worker', '@temporalio/client', '@temporalio/testing'],
              message: 'Workflows use @temporalio/workflow (and @temporalio/common); the other SDK packages are Node-side.',
              allowTypeImports: true,
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'No process in the workflow sandbox: pass configuration in the workflow input.' },
        { name: 'Buffer', message: 'No Buffer in the workflow sandbox.' },
        { name: 'require', message: 'Import at the top; the bundler resolves imports once.' },
        { name: '__dirname', message: 'No file system in the workflow sandbox.' },
        { name: '__filename', message: 'No file system in the workflow sandbox.' },
      ],
      'no-restricted-syntax': ['error', { selector: 'ImportExpression', message: 'No dynamic import in workflows: the bundle is built once, ahead of time.' }],
    },
  },

  {
    files: ['test/**/*.ts'],
    rules: {
      // Response bodies and histories are parsed JSON; the assertions are the type check.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // The HTTP helper's body and the crash test's polled orders are `any` on purpose: tests assert on their shape.
      '@typescript-eslint/no-explicit-any': 'off',
      // Tests hand `activities.reserveStock` to runActivity detached, as a worker does; activities are closures with no `this`.
      '@typescript-eslint/unbound-method': 'off',
    },
  },

  {
    // Plain JavaScript (this file, scripts/run.mjs) is outside tsconfig.json: lint it without type information.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
  },

  {
    // The demo shop's pages: ES modules that run in the browser.
    files: ['shop/public/**/*.js'],
    languageOptions: { globals: { ...globals.browser }, sourceType: 'module' },
  },

  // Last, so no formatting rule fights prettier.
  prettier,
);
