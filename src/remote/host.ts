// What a remote extension needs of its manager: an interface, so that src/remote/ never imports the manager (which
// imports the Ray loader, which builds on src/remote/: no cycle).

import type { ClusterListener } from "./listener.js";

export interface RemoteHost {
  /** The TLS listener remote guests connect back to, opened at the first call. */
  clusterListener(): Promise<ClusterListener>;
}
