import type { Endpoint, SseEvent } from "@aigw/provider";
import type { Protocol, StreamWithholder, TextPiece } from "../protocols/protocol.js";
import { applyMatches, jsonEscaped, type Match, type Matcher } from "./matcher.js";

/** Most text held while a match is still growing at its end; past it, the held text goes out. */
const maxHeldChars = 64 * 1024;
/** The largest hold-back window asked for that is honoured. */
const maxHoldBack = 4096;

interface HeldEvent {
  event: SseEvent;
  pieces: TextPiece[];
  /** Where the event's text ends, counted from the stream's first character. */
  end: number;
}

/**
 * Output rules on one stream. Events are held until `holdBack` more characters of text
 * followed them, so a match split across events is seen whole, and go out in order; an event
 * that closes a part of the answer (a choice, a block, usage) releases everything held first.
 * A blocking match withholds the rest of the answer and ends it as the protocol ends filtered
 * answers.
 */
export class OutputStreamFilter {
  private held: HeldEvent[] = [];
  /** The held events' text, from `textStart` on. */
  private text = "";
  private textStart = 0;
  private withholder: StreamWithholder;
  private withheld = false;
  private readonly holdBack: number;
  /** Held text at the last scan that released nothing: a growing match is not rescanned per event. */
  private scannedLength = 0;

  constructor(
    private readonly protocol: Protocol,
    private readonly endpoint: Endpoint,
    private readonly matcher: Matcher,
    holdBack: number,
    /** Gets the matches of released or withheld text; `unedited`: those in thinking. */
    private readonly report: (matches: readonly Match[], unedited: ReadonlySet<Match>) => void,
  ) {
    this.withholder = protocol.streamWithholder(endpoint);
    this.holdBack = Math.max(Math.min(holdBack, maxHoldBack), matcher.holdBack);
  }

  /** The events to send for `event` now: none, it, or held ones and it. */
  push(event: SseEvent): SseEvent | SseEvent[] | null {
    if (this.withheld) return this.withholder.withhold(event);
    const pieces = this.protocol.eventText(this.endpoint, event);
    if (pieces.length === 0 && this.held.length === 0) {
      this.withholder.pass(event);
      return event;
    }
    if (pieces.length === 0 && this.withholder.closes(event)) {
      const released = this.release(true);
      if (this.withheld) {
        const end = this.withholder.withhold(event);
        if (end) released.push(end);
      } else {
        this.withholder.pass(event);
        released.push(event);
      }
      return released.length > 0 ? released : null;
    }
    for (const piece of pieces) this.text += piece.text;
    this.held.push({ event, pieces, end: this.textStart + this.text.length });
    if (this.text.length < Math.max(2 * this.holdBack, this.scannedLength + this.holdBack)) {
      return null;
    }
    const released = this.release(false);
    this.scannedLength = released.length > 0 ? 0 : this.text.length;
    return released.length > 0 ? released : null;
  }

  /** Releases what no later text can change, all of it when `final`; withholds on a block. */
  private release(final: boolean): SseEvent[] {
    const matches = this.matcher.find(this.text);
    if (matches.some((match) => match.action === "block")) {
      this.report(
        matches.filter((match) => match.action === "block"),
        new Set(),
      );
      this.withheld = true;
      const ends: SseEvent[] = [];
      for (const { event } of this.held) {
        const end = this.withholder.withhold(event);
        if (end) ends.push(end);
      }
      this.held = [];
      this.text = "";
      return ends;
    }
    let boundary = final ? this.text.length : this.text.length - this.holdBack;
    if (!final) {
      // A match reaching the end may still grow: it goes out with the text that completes it.
      for (const match of matches) {
        if (match.end >= this.text.length && match.start < boundary) boundary = match.start;
      }
      if (this.text.length > maxHeldChars) boundary = this.text.length;
    }
    // Whole events only, and no match cut in two: one crossing the cut waits with its start.
    let cut = 0;
    let count = 0;
    for (const held of this.held) {
      if (held.end - this.textStart > boundary) break;
      cut = held.end - this.textStart;
      count++;
    }
    const overfull = this.text.length > maxHeldChars;
    for (let index = matches.length - 1; index >= 0 && !overfull; index--) {
      const match = matches[index] as Match;
      while (count > 0 && match.start < cut && match.end > cut) {
        count--;
        cut = count === 0 ? 0 : (this.held[count - 1] as HeldEvent).end - this.textStart;
      }
    }
    if (count === 0) return [];
    const releasedMatches = matches.filter((match) => match.start < cut);
    const unedited = new Set<Match>();
    const released: SseEvent[] = [];
    let offset = 0;
    for (const held of this.held.slice(0, count)) {
      const event = this.rewrite(held, offset, releasedMatches, unedited);
      offset = held.end - this.textStart;
      this.withholder.pass(event);
      released.push(event);
    }
    this.report(releasedMatches, unedited);
    this.held = this.held.slice(count);
    this.text = this.text.slice(cut);
    this.textStart += cut;
    return released;
  }

  /** `held` with the redacting matches applied to its pieces' text (at `offset` in `text`). */
  private rewrite(
    held: HeldEvent,
    offset: number,
    matches: readonly Match[],
    unedited: Set<Match>,
  ): SseEvent {
    const edits = held.pieces.map((piece) => {
      const start = offset;
      offset += piece.text.length;
      // Thinking is signed by the provider: it is judged, never edited.
      if (piece.kind === "reasoning") {
        for (const match of matches) {
          if (match.start >= start && match.start < offset) unedited.add(match);
        }
        return undefined;
      }
      const local: Match[] = [];
      for (const match of matches) {
        if (match.action !== "redact" || match.end <= start || match.start >= offset) continue;
        // A match starting in an earlier piece is replaced there: here its rest goes.
        local.push(
          match.start >= start
            ? { ...match, start: match.start - start, end: Math.min(match.end, offset) - start }
            : { ...match, start: 0, end: Math.min(match.end, offset) - start, replacement: "" },
        );
      }
      if (local.length === 0) return undefined;
      const text = this.text.slice(start, offset);
      return applyMatches(text, local, piece.kind === "tool_call" ? jsonEscaped : undefined);
    });
    if (edits.every((edit) => edit === undefined)) return held.event;
    let index = 0;
    return this.protocol.editEventText(this.endpoint, held.event, () => edits[index++]);
  }
}
