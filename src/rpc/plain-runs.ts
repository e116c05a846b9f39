// The plain calls and results of one tick as one frame's header: a run of calls to one method, a run of results, or
// a batch of whatever else (docs/protocol.md#batches).

import { MAX_BATCH } from "./protocol.js";

/** A run is written once its messages' text reaches this many characters (or MAX_BATCH messages). */
const RUN_CHARS = 60 * 1024;
/** What a call's keys end with (plain-json.ts callKeysJson); a run of calls lists their args apart. */
const ARGS_KEY = ',"args":';
/** A call's keys that name a target and method (not a callable id): such calls can share one "calls" header. */
const TARGET_KEYS = ',"target":';

/** A call or result whose values need no tag, in parts: the other side reads the same messages however it is written. */
export interface PlainMessage {
  readonly id: number;
  /** A call's text between its id and its args (plain-json.ts callKeysJson); undefined for a result. */
  readonly keys: string | undefined;
  /** The call's args, or the result's value, as JSON. */
  readonly json: string;
}

/** How a plain call's and a plain result's headers begin, and what a result has between its id and its value. */
export const CALL_HEAD = '{"k":"call","id":';
export const RESULT_HEAD = '{"k":"result","id":';
export const VALUE_KEY = ',"value":';

/** The header of `message` alone, the same bytes as the codec path writes. */
export function plainMessageJson(message: PlainMessage): string {
  return message.keys === undefined
    ? `${RESULT_HEAD}${message.id}${VALUE_KEY}${message.json}}`
    : `${CALL_HEAD}${message.id}${message.keys}${message.json}}`;
}

/** Plain messages gathered in order until `take()`. */
export class PlainRun {
  private readonly messages: PlainMessage[] = [];
  private textChars = 0;

  /** Characters of JSON gathered (about the bytes the header will take). */
  get chars(): number {
    return this.textChars;
  }

  /** Adds `message`; true when the run is full and should be written now. */
  add(message: PlainMessage): boolean {
    this.messages.push(message);
    this.textChars += message.json.length + (message.keys?.length ?? 0) + 16;
    return this.messages.length >= MAX_BATCH || this.textChars >= RUN_CHARS;
  }

  /**
   * What the run holds, taken out of it: the one message when it holds one (it goes as itself), else the header for
   * all of them (results only as one `results`, calls of one target and method as one `calls`, else a `batch`), or
   * undefined when it holds none.
   */
  take(): PlainMessage | string | undefined {
    const messages = this.messages;
    if (messages.length === 0) return undefined;
    this.textChars = 0;
    if (messages.length === 1) return messages.pop()!;
    const json = runJson(messages);
    messages.length = 0;
    return json;
  }
}

function runJson(messages: readonly PlainMessage[]): string {
  const keys = messages[0]!.keys;
  if (messages.every((m) => m.keys === keys)) {
    const ids = messages.map((m) => m.id).join(",");
    const values = messages.map((m) => m.json).join(",");
    if (keys === undefined) return `{"k":"results","ids":[${ids}],"values":[${values}]}`;
    if (keys.startsWith(TARGET_KEYS) && keys.endsWith(ARGS_KEY)) {
      return `{"k":"calls",${keys.slice(1, -ARGS_KEY.length)},"ids":[${ids}],"args":[${values}]}`;
    }
  }
  return `{"k":"batch","m":[${messages.map(plainMessageJson).join(",")}]}`;
}
