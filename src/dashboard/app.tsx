import { Box, useInput, useStdin } from 'ink';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useSnapshot, useTerminalSize, type TerminalSize } from './hooks.js';
import { COLUMN_GAP, planLayout } from './layout.js';
import {
  ActorsPanel,
  ErrorsPanel,
  FilterPanel,
  FooterBar,
  HeaderBar,
  HelpPanel,
  OutputPanel,
  ShardsPanel,
  ThroughputPanel,
} from './panels.js';
import type { CoordinatorSnapshot } from '../coordinator/snapshot.js';
import type { DashboardControls, SnapshotSource } from '../coordinator/snapshot-source.js';

/**
 * At most 4 frames a second: ink redraws the whole frame each time (≈6 ms for 80×24 on a server
 * core, mostly its per-character ANSI handling), and 10 a second would break the budget of 5% of a
 * core. The figures shown are per-second rates anyway.
 */
export const DEFAULT_REFRESH_MS = 250;

export interface DashboardProps {
  source: SnapshotSource;
  controls: DashboardControls;
  /** Least time between two redraws (default DEFAULT_REFRESH_MS). */
  refreshMs?: number;
  /** First word of the header line (default "cah gpu"). */
  title?: string;
  /** A fixed size instead of following the terminal's. */
  size?: TerminalSize;
  /** The run as it ended: drawn instead of the live snapshot (the last frame). */
  final?: CoordinatorSnapshot;
}

/** What the keys asked for, until the snapshot shows it took effect. */
interface Requests {
  paused: boolean | null;
  draining: boolean;
}

/** The whole `cah gpu` dashboard: header, panels laid out for the terminal's size, footer with keys. */
export function Dashboard({ source, controls, refreshMs = DEFAULT_REFRESH_MS, title = 'cah gpu', size, final }: DashboardProps) {
  const live = useSnapshot(source, refreshMs);
  const snapshot = final ?? live;
  const terminal = useTerminalSize();
  const { columns, rows } = size ?? terminal;
  const [help, setHelp] = useState(false);
  const [requests, setRequests] = useState<Requests>({ paused: null, draining: false });
  const paused = requests.paused ?? snapshot.paused;
  const draining = requests.draining || snapshot.draining;
  // Once the coordinator reports the pause state asked for, it is the truth again.
  useEffect(() => {
    if (requests.paused !== null && snapshot.paused === requests.paused) setRequests((r) => ({ ...r, paused: null }));
  }, [snapshot.paused, requests.paused]);

  // The input handler reads the latest state through a ref so that it stays one subscription.
  const state = useRef({ paused, draining, interrupts: 0 });
  state.current.paused = paused;
  state.current.draining = draining;
  const onInput = useCallback(
    (input: string, key: { ctrl: boolean }) => {
      const s = state.current;
      if (key.ctrl && input === 'c') {
        // Raw mode swallows the terminal's SIGINT: the first Ctrl+C drains like q, the second
        // delivers the signal the user meant.
        if (++s.interrupts > 1) process.kill(process.pid, 'SIGINT');
        else if (!s.draining) {
          controls.drainAndQuit();
          setRequests((r) => ({ ...r, draining: true }));
        }
        return;
      }
      if (input === 'q' && !s.draining) {
        controls.drainAndQuit();
        setRequests((r) => ({ ...r, draining: true }));
      } else if (input === 'p') {
        const next = !s.paused;
        s.paused = next;
        controls.pauseLeasing(next);
        setRequests((r) => ({ ...r, paused: next }));
      } else if (input === '?') {
        setHelp((h) => !h);
      }
    },
    [controls],
  );
  const { isRawModeSupported } = useStdin();
  useInput(onInput, { isActive: isRawModeSupported === true });

  const layout = planLayout(columns, rows);
  const shardsState = { progress: snapshot.progress, etaMs: snapshot.etaMs, ended: snapshot.ended };
  const gap = layout.spacing ? 1 : 0;
  const { width, leftWidth, rightWidth } = layout;
  const middle = help ? (
    <HelpPanel width={width} maxLines={layout.actorLines} />
  ) : (
    <ActorsPanel
      actors={snapshot.actors}
      nowMs={snapshot.nowMs}
      width={width}
      maxLines={layout.actorLines}
      {...(snapshot.where && snapshot.filter.verdict === 'no-workers' ? { attachHint: snapshot.where.attachWorker } : {})}
    />
  );
  const errors = layout.errorRows > 0 && (
    <ErrorsPanel errors={snapshot.topErrors} width={leftWidth} rows={layout.errorRows} />
  );
  const output = layout.output && <OutputPanel output={snapshot.output} width={rightWidth} />;
  return (
    <Box flexDirection="column" width={width} rowGap={gap}>
      <HeaderBar
        title={title}
        runId={snapshot.runId}
        elapsedMs={snapshot.nowMs - snapshot.startedAtMs}
        paused={paused}
        draining={draining}
        width={width}
      />
      {layout.twoColumns ? (
        <Box columnGap={COLUMN_GAP}>
          <ShardsPanel shards={snapshot.shards} state={shardsState} width={leftWidth} />
          <FilterPanel filter={snapshot.filter} totals={snapshot.totals} width={rightWidth} />
        </Box>
      ) : (
        <>
          <ShardsPanel shards={snapshot.shards} state={shardsState} width={width} />
          <FilterPanel filter={snapshot.filter} totals={snapshot.totals} width={width} />
        </>
      )}
      {layout.throughputLines > 0 && (
        <ThroughputPanel points={snapshot.throughput} totals={snapshot.totals} width={width} rows={layout.throughputLines === 2 ? 2 : 4} />
      )}
      {middle}
      {layout.twoColumns ? (
        (errors || output) && (
          <Box columnGap={COLUMN_GAP}>
            {errors}
            {output}
          </Box>
        )
      ) : (
        <>
          {errors}
          {output}
        </>
      )}
      <FooterBar
        paused={paused}
        draining={draining}
        ended={snapshot.ended !== null}
        {...(snapshot.where ? { where: snapshot.where } : {})}
        width={width}
      />
    </Box>
  );
}
