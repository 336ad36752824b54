import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { useAction } from './hooks.ts';
import 'uplot/dist/uPlot.min.css';

/** An error from the API, announced to screen readers as it appears. */
export function ErrorNote({ error, label }: { error: string | undefined; label?: string }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {label ? <strong>{label}: </strong> : null}
      {error}
    </p>
  );
}

/**
 * A button that asks once more before it acts (kick, end, delete): the first press shows
 * "Confirm" and "Cancel" in its place, both reachable by keyboard; Escape cancels, and focus
 * goes back to the button when the question is withdrawn or the action failed.
 */
export function ConfirmButton(props: { label: string; confirm: string; onConfirm: () => void | Promise<void>; busy?: boolean; name?: string }) {
  const [asking, setAsking] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const returnFocus = useRef(false);
  useLayoutEffect(() => {
    if (asking) confirmRef.current?.focus();
    else if (returnFocus.current) {
      returnFocus.current = false;
      buttonRef.current?.focus();
    }
  }, [asking]);
  const withdraw = () => {
    returnFocus.current = true;
    setAsking(false);
  };
  if (!asking) {
    return (
      <button type="button" ref={buttonRef} class="secondary outline small" aria-label={props.name ? `${props.label} ${props.name}` : undefined} disabled={props.busy} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={props.name ? `${props.label} ${props.name}?` : `${props.label}?`} onKeyDown={(e) => e.key === 'Escape' && withdraw()}>
      <button
        type="button"
        class="danger small"
        ref={confirmRef}
        disabled={props.busy}
        onClick={async () => {
          await props.onConfirm();
          // Still here (the row stays): the action failed, and its error shows beside the button.
          withdraw();
        }}
      >
        {props.confirm}
      </button>
      <button type="button" class="secondary outline small" onClick={withdraw}>
        Cancel
      </button>
    </span>
  );
}

/** A ConfirmButton that runs one API call, shows its error beside it, and calls onDone after it worked. */
export function ConfirmAction(props: { label: string; name: string; confirm: string; action: () => Promise<unknown>; onDone: () => void }) {
  const act = useAction();
  return (
    <>
      <ConfirmButton
        label={props.label}
        name={props.name}
        confirm={props.confirm}
        busy={act.busy}
        onConfirm={async () => {
          if (await act.run(props.action)) props.onDone();
        }}
      />
      <ErrorNote error={act.error} />
    </>
  );
}

export function StatusBadge({ status }: { status: string | null | undefined }) {
  const s = status ?? 'unknown';
  return <span class={`badge badge-${s.replace(/[^a-z0-9-]/gi, '').toLowerCase()}`}>{s}</span>;
}

/** A table that scrolls sideways on a narrow screen instead of squeezing its columns. */
export function DataTable(props: { caption: string; head: string[]; children: ComponentChildren; empty?: string; rows: number; id?: string }) {
  return (
    <div class="table-wrap" role="region" aria-label={`${props.caption} table`} tabIndex={0}>
      <table class="striped" id={props.id}>
        <caption class="visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {props.head.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows === 0 ? (
            <tr>
              <td colSpan={props.head.length} class="empty">
                {props.empty ?? 'None.'}
              </td>
            </tr>
          ) : (
            props.children
          )}
        </tbody>
      </table>
    </div>
  );
}

/** "Updated 12:03:04" with the poll's error, if the last call failed. */
export function Freshness({ at, error }: { at: number | undefined; error: string | undefined }) {
  return (
    <p class="freshness">
      {/* Only a failure is announced: the time changes every second. */}
      <span role="status">{error ? <span class="error">Not updated: {error}</span> : null}</span>
      {error ? null : at ? <small>Updated {new Date(at).toLocaleTimeString()}</small> : <small aria-busy="true">Loading…</small>}
    </p>
  );
}

export interface ChartSeries {
  label: string;
  stroke: string;
  /** Axis values as text (bit rates, counts). */
  format: (v: number) => string;
}

/**
 * A small time-series chart (uPlot: canvas, a few kB, made for streaming data). Its label and a
 * text line of the latest values make it readable without seeing the canvas.
 */
export function TimeChart(props: { title: string; series: ChartSeries[]; data: [number[], ...number[][]]; summary: string }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [width, setWidth] = useState(320);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setWidth(Math.max(200, Math.floor(el.clientWidth))));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const format = props.series[0]?.format ?? String;
    const opts: uPlot.Options = {
      width,
      height: 160,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{}, { values: (_u, vals) => vals.map((v) => format(v)), size: 86 }],
      series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, value: (_u: uPlot, v: number | null) => (v === null ? '–' : s.format(v)) }))],
    };
    plot.current = new uPlot(opts, props.data as uPlot.AlignedData, el);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // Made again only when the series or the width change; data updates go through setData.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [width, props.series.map((s) => s.label).join()]);

  useEffect(() => {
    plot.current?.setData(props.data as uPlot.AlignedData);
  }, [props.data]);

  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={host} role="img" aria-label={`${props.title}: ${props.summary}`} />
      <p class="visually-hidden" aria-live="off">
        {props.summary}
      </p>
    </figure>
  );
}

/** Previous / next page of a list the API pages (SignalWire `links`). */
export function Pager(props: { label: string; page: number; hasPrev: boolean; hasNext: boolean; onPrev: () => void; onNext: () => void; onFirst?: () => void }) {
  return (
    <nav class="pager" aria-label={props.label}>
      {props.onFirst ? (
        <button type="button" class="secondary outline small" disabled={!props.hasPrev} onClick={props.onFirst}>
          First
        </button>
      ) : null}
      <button type="button" class="secondary outline small" disabled={!props.hasPrev} onClick={props.onPrev}>
        Previous
      </button>
      <span aria-live="polite">Page {props.page + 1}</span>
      <button type="button" class="secondary outline small" disabled={!props.hasNext} onClick={props.onNext}>
        Next
      </button>
    </nav>
  );
}
