// An Extension served by a guest that runs elsewhere (skeleton: made real in the next commit).

import type { Extension } from "../extension.js";
import type { ExtensionManager } from "../manager.js";
import type { RemoteExtensionOptions } from "./slot.js";

export async function startRemoteExtension(_manager: ExtensionManager, _options: RemoteExtensionOptions): Promise<Extension> {
  throw new Error("loadRemote: not implemented yet");
}
