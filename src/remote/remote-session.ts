// An Extension served by a guest that runs elsewhere (skeleton: made real in the next commit).

import type { Extension } from "../extension.js";
import type { RemoteHost } from "./host.js";
import type { RemoteExtensionOptions } from "./slot.js";

export async function startRemoteExtension(_manager: RemoteHost, _options: RemoteExtensionOptions): Promise<Extension> {
  throw new Error("loadRemote: not implemented yet");
}
