import { proxyActivities } from '@temporalio/workflow';

/** What the cluster tests' worker does for each workflow: note that the workflow's activity ran. */
export interface ClusterProbeActivities {
  record(label: string): Promise<void>;
}

const { record } = proxyActivities<ClusterProbeActivities>({
  startToCloseTimeout: '10 seconds',
  // A history node killed mid-flight can lose an activity's answer; retry fast so the test stays short.
  retry: { initialInterval: '200 milliseconds', maximumInterval: '1 second' },
});

/** One workflow task, one activity, one result: the smallest workflow that crosses history, matching and a worker. */
export async function clusterProbe(label: string): Promise<string> {
  await record(label);
  return `${label} done`;
}
