import type { StepLatency } from './breakdown';
import type { WebhookLatency } from './webhooks';

/** One level of the closed-loop sweep: the platform and the floor at the same concurrency. */
export interface SweepRow {
  concurrency: number;
  orders_per_s: number;
  accepted_per_s: number;
  accept_p50_ms: number;
  accept_p95_ms: number;
  accept_p99_ms: number;
  e2e_p50_ms: number;
  e2e_p95_ms: number;
  e2e_p99_ms: number;
  completed: number;
  errors: number;
  floor_orders_per_s: number;
  floor_p50_ms: number;
  floor_p99_ms: number;
  floor_ratio: number;
  // The fields below are absent from results written before they were measured (the 08-* runs).
  floor_completed?: number;
  /** CPU seconds by process while each side ran */
  cpu_s?: Record<string, number>;
  floor_cpu_s?: Record<string, number>;
  steps?: Record<string, StepLatency>;
  floor_steps?: Record<string, StepLatency>;
  /** each turn's own figures (the actions per order of a turn: absent before the 2026-12 runs) */
  rounds?: Array<{ orders_per_s: number; floor_orders_per_s: number; actions_per_order?: number; floor_actions_per_order?: number }>;
  // Absent from results written before they were measured (the 2026-11 runs).
  /** Temporal's billable actions (the server's `action` counter) per completed order, in the platform's namespace */
  actions_per_order?: number;
  /** the same per floor workflow, in the floor's namespace */
  floor_actions_per_order?: number;
  /** by `action_type`: grpc_StartWorkflowExecution, command_ScheduleActivityTask, … */
  actions_per_order_by_type?: Record<string, number>;
  floor_actions_per_order_by_type?: Record<string, number>;
  /** CPU ms per completed order (per floor workflow) of every process together, and by process */
  cpu_ms_per_order?: number;
  floor_cpu_ms_per_order?: number;
  cpu_ms_per_order_by_process?: Record<string, number>;
  floor_cpu_ms_per_order_by_process?: Record<string, number>;
  /** from an order's step to the storefront's webhook endpoint, for the events of this level (absent before the notifications service) */
  webhook?: WebhookLatency;
}

/** One fixed arrival rate of the open loop. */
export interface OpenLoopRow {
  offered_per_s: number;
  accepted_per_s: number;
  orders_per_s: number;
  accept_p50_ms: number;
  accept_p99_ms: number;
  e2e_p50_ms: number;
  e2e_p99_ms: number;
  errors: number;
}

/**
 * bench/results/<timestamp>.json: the named fields are those of the level with the most orders per second.
 * The floor of the 2026-11 runs was another workflow: twelve no-ops on the queues of the platform's own
 * twelve steps, where the floor now runs one per call a completed order makes to another service.
 */
/** The Temporal a run measured on (absent from results written before the cluster runs: the dev server). */
export interface BenchTemporal {
  kind: 'dev-server' | 'cluster';
  history_nodes: number;
  shards: number;
  mtls: boolean;
  /** where Temporal keeps its state: the dev server's SQLite file (or memory), the cluster's PostgreSQL */
  persistence: 'sqlite' | 'memory' | 'postgresql';
}

export interface BenchResults {
  at: string;
  temporal?: BenchTemporal;
  machine: { cpus: number; cpu_model?: string; memory_gb: number; node: string };
  settings: {
    seconds_per_level: number;
    rounds_per_level: number;
    pools: Record<string, number>;
    worker_max_concurrent_activities: number;
    worker_max_cached_workflows: string;
  };
  orders_per_s: number | null;
  accept_p99_ms: number | null;
  e2e_p50_ms: number | null;
  e2e_p99_ms: number | null;
  floor_orders_per_s: number | null;
  floor_ratio: number | null;
  // The three below are absent from results written before the notifications service.
  webhook_p50_ms?: number | null;
  webhook_p99_ms?: number | null;
  /** every webhook of the closed-loop sweep's orders */
  webhook_sweep?: WebhookLatency;
  // The four below are absent from results written before they were measured (the 2026-11 runs).
  actions_per_order?: number | null;
  floor_actions_per_order?: number | null;
  cpu_ms_per_order?: number | null;
  floor_cpu_ms_per_order?: number | null;
  saturation_concurrency: number | null;
  burst_drain_s: number;
  burst_lost: number;
  burst_refused: number;
  pg_max_connections: number;
  pg_max_connections_by_database: Record<string, number>;
  pg_pool_budget: number;
  pg_max_background_backends: number;
  rss_mb: Record<string, number>;
  sweep: SweepRow[];
  open_loop: OpenLoopRow[];
  duration_s: number;
}
