// The fd channel after its peer died with messages of ours unread: Linux reports ECONNRESET once, before the fds the
// peer sent while alive; the channel reads past it, so a kill is never a protocol error (the soak's 15 in 70,000).

import assert from "node:assert/strict";
import { openSync } from "node:fs";
import { constants } from "node:os";
import { describe, test } from "node:test";
import { FdChannel } from "../src/rpc/fd-channel.js";
import { nativeStatus, type NativeAddon } from "../src/tensor/native.js";

const skip = nativeStatus.available ? false : `native addon unavailable: ${nativeStatus.reason}`;
const native = (nativeStatus.available ? nativeStatus.addon : undefined) as NativeAddon;

/** A seqpacket pair where `guest` sent one fd to the host and then died with one fd of the host's unread. */
function guestDiedWithUnread(): { host: number } {
  const [host, guest] = native.socketPair("seqpacket");
  const devnull = openSync("/dev/null", "r");
  assert.equal(native.sendFds(host, Buffer.from("1"), [devnull]), 1, "the host's message, never read");
  assert.equal(native.sendFds(guest, Buffer.from("1"), [devnull]), 1, "the guest's fd for a frame it wrote");
  native.closeFd(devnull);
  native.closeFd(guest); // what the kernel does to a SIGKILLed guest's end
  return { host };
}

describe("the fd channel when its peer was killed", { skip }, () => {
  test("the kernel reports ECONNRESET before the fds already queued (the control)", () => {
    const { host } = guestDiedWithUnread();
    assert.throws(
      () => native.recvFds(host, 253, 16),
      (error: unknown) => (error as { errno?: number }).errno === constants.errno.ECONNRESET,
    );
    const message = native.recvFds(host, 253, 16);
    assert.equal(message?.fds.length, 1, "the fd was there all along");
    for (const fd of message!.fds) native.closeFd(fd);
    native.closeFd(host);
  });

  test("receive() reads past the pending ECONNRESET and returns the frame's fds", () => {
    const { host } = guestDiedWithUnread();
    const channel = new FdChannel(host, native);
    const fds = channel.receive(1);
    assert.equal(fds.length, 1);
    for (const fd of fds) channel.closeReceived(fd);
    // Nothing more queued: a frame announcing fds now is the protocol error it always was.
    assert.throws(() => channel.receive(1), /announced 1 file descriptors but 0 arrived/);
    channel.close();
  });
});
