import { inject } from 'vitest';
import { connectClient, temporalSettings, type TemporalSettings } from '../../lib/temporal/connection';

// What tests use from one place: the workers (vitest-free, so scripts share them) and clients of the test dev server.
export * from './workers';

/** The platform's connection settings for a namespace of the test dev server: its keyring, its data converter. */
export const testTemporalSettings = (namespace: string): TemporalSettings =>
  temporalSettings({ ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: namespace });

/** A client of a namespace of the test dev server, as the API makes one. */
export const testClient = (namespace: string, options?: Parameters<typeof connectClient>[1]) => connectClient(testTemporalSettings(namespace), options);
