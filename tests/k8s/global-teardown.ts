/**
 * The k8s project's globalTeardown: the run's shared clusters down, with every leak check
 * of `Cluster.down()` (no process, state directory, pod bridge or KUBE- rule left). A leak
 * fails the jest run.
 */
import { Cluster } from './cluster';

export default function globalTeardown(): void {
  Cluster.downAllShared();
}
