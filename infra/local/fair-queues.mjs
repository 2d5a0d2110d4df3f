// Amazon SQS fair queues on fauxqs's standard queues.
//
// In AWS a standard queue whose messages carry a MessageGroupId is a fair queue: SQS marks a
// tenant (a message group) noisy when it holds more than 10% of the queue's in-flight
// messages and at least 30 of them, or more than 10% of the consumers' recent processing
// time; while quiet tenants have messages waiting, a receive gets theirs first, and among
// noisy tenants, those of the one with the fewest in flight (the SQS Developer Guide, "How
// Amazon SQS fair queues work"). A tenant with no backlog is quiet. A message without a group
// is a tenant of its own. fauxqs accepts the group on a standard queue and drops it; with
// this installed it keeps it (ReceiveMessage returns it, as SQS does) and orders each
// receive as above, so the local world shows what the receiver's groups buy in AWS.
//
// Groups are kept for SendMessage; SendMessageBatch (the DLQ tool's replay) keeps none, so a
// replayed message is a tenant of its own. Processing time runs from a receive to the
// message's delete or visibility change, over the last RECENT_MS.

const NOISY_SHARE = 0.1;
const NOISY_MIN_IN_FLIGHT = 30;
const RECENT_MS = 30_000;

export async function installFairQueues() {
  const app = import.meta.resolve("fauxqs");
  const { SqsQueue } = await import(new URL("./sqs/sqsStore.js", app));
  const { SqsRouter } = await import(new URL("./sqs/sqsRouter.js", app));

  // The group of the SendMessage being handled: fauxqs's action runs synchronously from
  // the router's call to the queue's enqueue, so the group is there when enqueue runs.
  let sending;
  const handle = SqsRouter.prototype.handle;
  SqsRouter.prototype.handle = function (request, reply) {
    const action = String(request.headers["x-amz-target"] ?? "").replace("AmazonSQS.", "");
    sending = action === "SendMessage" ? request.body?.MessageGroupId : undefined;
    try {
      return handle.call(this, request, reply);
    } finally {
      sending = undefined;
    }
  };

  const enqueue = SqsQueue.prototype.enqueue;
  SqsQueue.prototype.enqueue = function (msg) {
    if (!this.isFifo() && sending && !msg.messageGroupId) msg.messageGroupId = sending;
    return enqueue.call(this, msg);
  };

  // A queue's record of processing time ended: [{group, start, end}], pruned to RECENT_MS.
  const spans = (q) => (q.fairSpans ??= []);
  const ended = (q, entry) => {
    if (entry?.receivedAt === undefined || entry.processedUntil !== undefined) return;
    entry.processedUntil = Date.now();
    const recent = spans(q);
    recent.push({ group: entry.message.messageGroupId, start: entry.receivedAt, end: entry.processedUntil });
    // Spans end in order: the old ones are at the front.
    while (recent.length > 0 && recent[0].end <= entry.processedUntil - RECENT_MS) recent.shift();
  };

  const deleteMessage = SqsQueue.prototype.deleteMessage;
  SqsQueue.prototype.deleteMessage = function (handle) {
    if (!this.isFifo()) ended(this, this.inflightMessages.get(handle));
    return deleteMessage.call(this, handle);
  };
  const changeVisibility = SqsQueue.prototype.changeVisibility;
  SqsQueue.prototype.changeVisibility = function (handle, timeout) {
    if (!this.isFifo()) ended(this, this.inflightMessages.get(handle));
    return changeVisibility.call(this, handle, timeout);
  };

  const dequeue = SqsQueue.prototype.dequeue;
  SqsQueue.prototype.dequeue = function (maxCount, visibilityTimeout, dlqResolver) {
    if (this.isFifo()) return dequeue.call(this, maxCount, visibilityTimeout, dlqResolver);
    this.processTimers();
    const noisy = noisyGroups(this);
    if (noisy.size > 0) {
      // Quiet tenants' messages first, in their order; then the noisy tenants', the one
      // with the fewest in flight first. fauxqs's dequeue takes from the front.
      const quiet = [], loud = [];
      for (const m of this.messages) (noisy.has(m.messageGroupId) ? loud : quiet).push(m);
      loud.sort((a, b) => noisy.get(a.messageGroupId) - noisy.get(b.messageGroupId));
      this.messages = quiet.concat(loud);
    }
    const out = dequeue.call(this, maxCount, visibilityTimeout, dlqResolver);
    const now = Date.now();
    for (const m of out) {
      const entry = this.inflightMessages.get(m.ReceiptHandle);
      if (entry) entry.receivedAt = now;
    }
    return out;
  };

  // noisyGroups is the groups that are noisy now, each with its messages in flight.
  function noisyGroups(q) {
    const now = Date.now();
    const backlog = new Set();
    let ungrouped = false;
    for (const m of q.messages) {
      if (m.messageGroupId) backlog.add(m.messageGroupId);
      else ungrouped = true;
    }
    // One tenant waiting (or none): there is no one to put first.
    if (backlog.size + (ungrouped ? 1 : 0) <= 1) return new Map();
    const inFlight = new Map();
    const busy = new Map(); // recent processing time per group
    let allInFlight = 0, allBusy = 0;
    const add = (group, ms) => {
      allBusy += ms;
      if (group) busy.set(group, (busy.get(group) ?? 0) + ms);
    };
    for (const entry of q.inflightMessages.values()) {
      allInFlight++;
      const g = entry.message.messageGroupId;
      if (g) inFlight.set(g, (inFlight.get(g) ?? 0) + 1);
      if (entry.receivedAt !== undefined && entry.processedUntil === undefined) add(g, now - Math.max(entry.receivedAt, now - RECENT_MS));
    }
    q.fairSpans = spans(q).filter((s) => s.end > now - RECENT_MS);
    for (const s of q.fairSpans) add(s.group, s.end - Math.max(s.start, now - RECENT_MS));
    const noisy = new Map();
    for (const g of backlog) {
      const n = inFlight.get(g) ?? 0;
      const byConcurrency = n > NOISY_SHARE * allInFlight && n >= NOISY_MIN_IN_FLIGHT;
      const byTime = allBusy > 0 && (busy.get(g) ?? 0) > NOISY_SHARE * allBusy;
      if (byConcurrency || byTime) noisy.set(g, n);
    }
    return noisy;
  }
}
