import uPlot from 'uplot';
import { h } from './dom';
import { dateText, formatNumber } from './format';

/** One line of a plot: readings as [time in ms, value]. */
export interface PlotSeries {
  label: string;
  points: Array<[number, number]>;
}

const COLORS = ['#1f5fa8', '#c0392b', '#2e8b57', '#8e44ad', '#d35400'];

/**
 * A time plot of numeric readings (uPlot on a canvas) with the unit on the y axis, and the same
 * numbers as a table for keyboard and screen-reader users (the canvas itself is an image to them).
 */
export function timePlot(title: string, unit: string, series: PlotSeries[], width: number): HTMLElement {
  const times = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns: Array<Array<number | null>> = series.map((s) => {
    const col: Array<number | null> = times.map(() => null);
    for (const [t, v] of s.points) col[index.get(t) ?? 0] = v;
    return col;
  });
  const data: uPlot.AlignedData = [times.map((t) => t / 1000), ...columns];
  const box = h('div', {
    class: 'plot',
    role: 'img',
    'aria-label': `${title}: ${times.length} readings${unit ? ` in ${unit}` : ''} from ${dateText(new Date(times[0] ?? 0).toISOString())} to ${dateText(new Date(times[times.length - 1] ?? 0).toISOString())}`,
  });
  const opts: uPlot.Options = {
    width: Math.max(320, Math.min(width, 960)),
    height: 260,
    title,
    scales: { x: { time: true } },
    axes: [{}, { label: unit, size: 60 }],
    series: [
      { label: 'Date', value: (_u, v) => (v == null ? '' : dateText(new Date(v * 1000).toISOString())) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        spanGaps: true,
        points: { show: true, size: 6 },
        value: (_u: uPlot, v: number | null) => (v == null ? '' : `${formatNumber(v)} ${unit}`),
      })),
    ],
  };
  new uPlot(opts, data, box);

  const table = h(
    'table',
    { class: 'compact' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Date'),
        series.map((s) => h('th', { scope: 'col' }, `${s.label}${unit ? ` (${unit})` : ''}`)),
      ),
    ),
    h(
      'tbody',
      {},
      [...times].reverse().map((t) =>
        h(
          'tr',
          {},
          h('td', {}, dateText(new Date(t).toISOString())),
          columns.map((c) => {
            const v = c[index.get(t) ?? 0];
            return h('td', {}, v == null ? '' : formatNumber(v));
          }),
        ),
      ),
    ),
  );
  return h(
    'figure',
    { class: 'plot-figure' },
    box,
    h('details', {}, h('summary', {}, `${title}: the readings as a table`), table),
  );
}
