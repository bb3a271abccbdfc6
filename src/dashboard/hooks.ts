import { useStdout } from 'ink';
import { useEffect, useState } from 'react';
import type { CoordinatorSnapshot } from '../coordinator/snapshot.js';
import type { SnapshotSource } from '../coordinator/snapshot-source.js';

/** Elapsed time and heartbeat ages move on even when the run is quiet. */
const CLOCK_MS = 1000;

/**
 * The source's latest snapshot, re-read at most once per `refreshMs` however often the source
 * nudges: a chatty coordinator cannot make the dashboard redraw faster than that.
 */
export function useSnapshot(source: SnapshotSource, refreshMs: number): CoordinatorSnapshot {
  const [snapshot, setSnapshot] = useState(() => source.current());
  useEffect(() => {
    let timer: NodeJS.Timeout | null = null;
    let lastPullAt = 0;
    const pull = (): void => {
      timer = null;
      lastPullAt = Date.now();
      try {
        setSnapshot(source.current());
      } catch {
        // A snapshot that cannot be built this time (a busy store): keep showing the last one.
      }
    };
    const nudge = (): void => {
      if (timer !== null) return;
      timer = setTimeout(pull, Math.max(0, lastPullAt + refreshMs - Date.now()));
      timer.unref();
    };
    const unsubscribe = source.subscribe(nudge);
    const clock = setInterval(nudge, CLOCK_MS);
    clock.unref();
    return () => {
      unsubscribe();
      clearInterval(clock);
      if (timer !== null) clearTimeout(timer);
    };
  }, [source, refreshMs]);
  return snapshot;
}

export interface TerminalSize {
  columns: number;
  rows: number;
}

/** The terminal's size, following resize events. */
export function useTerminalSize(): TerminalSize {
  const { stdout } = useStdout();
  const [size, setSize] = useState(() => terminalSize(stdout));
  useEffect(() => {
    const onResize = (): void => setSize(terminalSize(stdout));
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}

function terminalSize(stdout: NodeJS.WriteStream): TerminalSize {
  return { columns: stdout.columns || 80, rows: stdout.rows || 24 };
}
