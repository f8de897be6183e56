// The operator console (/console): stream control and the outputs' health,
// the queue (catalog search, remove, drag to reorder), live KPIs, the
// pipeline (runs, benchmarks, a batch on demand) and experiments. The API
// enforces every permission; this page only hides what the account lacks.

import "./styles/console.css";

import {
  Api,
  ApiError,
  type Me,
  type Page,
  type PipelineRun,
  type Queue,
  type QueueEntry,
  type StreamStatus,
  type Track,
  type WebConfig,
} from "./lib/api";
import { AuthDialog } from "./lib/auth-ui";
import { $, announce, h, show, text } from "./lib/dom";
import { ago, clock, duration, prettyGenre, trackTitle } from "./lib/format";
import { LiveStatus } from "./lib/live";
import { dropIndex, move, orderRequest } from "./lib/reorder";
import { installPrompt, registerServiceWorker } from "./lib/pwa";
import { Session } from "./lib/session";
import { dashboardKpis, playsByDay } from "./lib/dashboard";
import { type Sensor, sensorText } from "./lib/pipeline";
import { Series } from "./lib/series";

const OPERATOR = ["stream:control", "queue:manage"];

const session = new Session();
const api = new Api(session);
const auth = new AuthDialog(api, { allowRegister: false });
let me: Me | null = null;
let live: LiveStatus | null = null;
const tracks = new Map<string, Track>();

registerServiceWorker();
installPrompt(null);

// -- the gate --------------------------------------------------------------

async function enter(): Promise<void> {
  me = null;
  if (session.signedIn) {
    try {
      me = await api.me();
    } catch {
      me = null;
    }
  }
  const allowed = me !== null && OPERATOR.some((p) => me?.permissions.includes(p));
  text($("#account"), me ? `${me.display_name} (${me.role})` : "");
  show($("#signin"), me === null);
  show($("#signout"), me !== null);
  show($("#gate"), !allowed);
  show($("#console"), allowed);
  document.documentElement.dataset.console = allowed ? "open" : me ? "refused" : "signed-out";
  if (me && !allowed) {
    text(
      $("#gate-text"),
      `Your account (${me.role}) cannot run the station: the console is for operators and admins. Ask an admin for the operator role.`,
    );
    show($("#gate-signin"), false);
    return;
  }
  if (!me) {
    text($("#gate-text"), "Sign in with an operator or admin account to run the station.");
    show($("#gate-signin"), true);
    return;
  }
  start();
}

const signIn = (): void => void auth.open().then((m) => m && enter());
$("#signin").addEventListener("click", signIn);
$("#gate-signin").addEventListener("click", signIn);
$("#signout").addEventListener("click", () => {
  live?.stop();
  live = null;
  void api.logout().then(enter);
});

let links: WebConfig | null = null;
let started = false;
function start(): void {
  if (started) return;
  started = true;
  live = new LiveStatus(api, onStatus);
  live.start();
  // Listener counts move without a track change: sample them for the chart.
  setInterval(() => void live?.refresh(), 10_000);
  void loadCatalog();
  void loadQueue();
  void loadLinks().then(loadRuns);
  void loadBenchmarks();
  void loadAnalytics();
  void loadExperiments();
  setInterval(() => void loadAnalytics(), 30_000);
  setInterval(() => void loadRuns(), 30_000);
}

// -- stream control and outputs ---------------------------------------------

const listenersSeries = new Series(90);
let lastTrack = "";

function onStatus(status: StreamStatus): void {
  const pill = $("#onair");
  text(pill, status.state === "on_air" ? "On air" : status.state === "stalled" ? "Stalled" : "Off air");
  pill.dataset.state = status.state;
  const np = status.now_playing;
  const title = $("#np-title");
  text(title, np ? np.title : "Nothing on air");
  title.dataset.trackId = np?.track_id ?? "";
  text($("#np-meta"), np ? `${prettyGenre(np.genre)} · ${np.source} · ${clock(np.position_s)} of ${clock(np.duration_s)}` : "");
  const rows = status.outputs.map((o) =>
    h(
      "tr",
      { "data-output": o.name },
      h("th", { scope: "row" }, o.name),
      h("td", {}, h("span", { class: "pill", "data-state": o.state }, o.state)),
      h("td", {}, String(o.restarts)),
      h("td", {}, String(o.listeners)),
      h("td", { class: "muted small" }, [o.detail, ago(o.updated_at)].filter(Boolean).join(" · ")),
    ),
  );
  $("#outputs").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 5 }, "No output has reported."))]));
  listenersSeries.push(Date.now(), status.listeners);
  renderKpis(status);
  drawChart();
  const key = `${np?.track_id}@${np?.started_at}`;
  if (key !== lastTrack) {
    lastTrack = key;
    void loadQueue(); // the streamer took the head of the queue
  }
}

async function control(command: "start" | "stop" | "skip"): Promise<void> {
  const status = $("#control-status");
  try {
    await api.call("control", { body: { command }, auth: "required" });
    text(status, `${command} sent; the streamer acts on it at its next tick.`);
    announce(`${command} sent`);
  } catch (err) {
    text(status, err instanceof ApiError ? `${command} refused: ${err.message}` : `${command} failed`);
  }
}

for (const command of ["start", "stop", "skip"] as const) {
  $(`#ctl-${command}`).addEventListener("click", () => void control(command));
}

// -- KPIs (analytics endpoints when present) ---------------------------------

let dashboard: [string, string][] = [];
let daily: [string, number][] = [];

function renderKpis(status: StreamStatus | null): void {
  const items: [string, string][] = [];
  if (status) {
    items.push(["Listeners now", String(status.listeners)], ["Uptime", duration(status.uptime_s)], ["Queued", String(status.queue_length)]);
    items.push(["Heartbeat", status.heartbeat_age_s === null ? "–" : `${status.heartbeat_age_s.toFixed(1)} s ago`]);
  }
  items.push(...dashboard);
  $("#kpis").replaceChildren(...items.map(([k, v]) => h("div", { class: "kpi" }, h("dt", {}, k), h("dd", {}, v))));
}

async function loadAnalytics(): Promise<void> {
  try {
    const body = await api.optional<Record<string, unknown>>("dashboard", { auth: "required" });
    if (body === null) {
      text($("#analytics-note"), "Plays, votes, pass rate and outbox lag appear here once the analytics endpoints are deployed.");
      return;
    }
    dashboard = dashboardKpis(body);
    const summaries = (body as { experiments?: { experiment_id: string; variants: Record<string, unknown>[] }[] }).experiments;
    if (Array.isArray(summaries)) {
      experimentResults = new Map(summaries.map((e) => [e.experiment_id, e.variants]));
      void loadExperiments();
    }
    daily = playsByDay(body);
    text($("#analytics-note"), daily.length ? `Plays per day: ${daily.map(([d, n]) => `${d.slice(5)} ${n}`).join(", ")}` : "From the analytics dashboard.");
    renderKpis(live?.last ?? null);
  } catch (err) {
    text($("#analytics-note"), err instanceof ApiError ? `Analytics: ${err.message}` : "Analytics unavailable.");
  }
}

function drawChart(): void {
  const canvas = $<HTMLCanvasElement>("#listeners-chart");
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const w = (canvas.width = canvas.clientWidth || 300);
  const hgt = (canvas.height = canvas.clientHeight || 80);
  ctx.clearRect(0, 0, w, hgt);
  const points = listenersSeries.scaled(w, hgt - 4);
  ctx.strokeStyle = "#7dd3fc";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y + 2) : ctx.moveTo(x, y + 2)));
  ctx.stroke();
  canvas.setAttribute("aria-label", `Listeners over the last minutes: now ${listenersSeries.last ?? 0}, peak ${listenersSeries.max}`);
}

// -- the queue ----------------------------------------------------------------

let queue: QueueEntry[] = [];

async function loadQueue(): Promise<void> {
  try {
    queue = (await api.call<Queue>("queue", { auth: "required" })).items;
    renderQueue();
  } catch (err) {
    text($("#queue-status"), err instanceof ApiError ? err.message : "The queue could not be read.");
  }
}

function label(trackId: string): string {
  const t = tracks.get(trackId);
  return t ? trackTitle(t) : trackId;
}

function renderQueue(): void {
  const list = $("#queue");
  list.replaceChildren(
    ...queue.map((entry, i) =>
      h(
        "li",
        { draggable: "true", "data-entry-id": entry.entry_id, "data-track-id": entry.track_id, class: "queue-row" },
        h("span", { class: "handle", "aria-hidden": "true" }, "⋮⋮"),
        h("span", { class: "grow" }, label(entry.track_id), h("span", { class: "muted small" }, ` · ${entry.source} · ${ago(entry.added_at)}`)),
        h("button", { type: "button", class: "small", "aria-label": `Move ${label(entry.track_id)} up`, disabled: i === 0, onclick: () => void reorder(i, i - 1) }, "Move up"),
        h(
          "button",
          { type: "button", class: "small", "aria-label": `Move ${label(entry.track_id)} down`, disabled: i === queue.length - 1, onclick: () => void reorder(i, i + 1) },
          "Move down",
        ),
        h("button", { type: "button", class: "small danger", "aria-label": `Remove ${label(entry.track_id)}`, onclick: () => void remove(entry) }, "Remove"),
      ),
    ),
  );
  if (!queue.length) list.append(h("li", { class: "muted" }, "Empty: the rotation picks every track."));
}

async function reorder(from: number, to: number): Promise<void> {
  if (from === to || to < 0 || to >= queue.length) return;
  const before = queue.map((e) => e.entry_id);
  const moved = move(queue, from, to);
  const ids = orderRequest(before, moved.map((e) => e.entry_id));
  if (!ids.length) return;
  queue = moved;
  renderQueue();
  try {
    queue = (await api.call<Queue>("reorder", { body: { entry_ids: ids }, auth: "required" })).items;
    renderQueue();
    text($("#queue-status"), "Queue reordered.");
    announce(`Moved to position ${to + 1}`);
    const row = document.querySelector<HTMLElement>(`[data-entry-id="${CSS.escape(moved[to]?.entry_id ?? "")}"] button`);
    row?.focus();
  } catch (err) {
    text($("#queue-status"), err instanceof ApiError ? `Not reordered: ${err.message}` : "Not reordered.");
    await loadQueue();
  }
}

async function remove(entry: QueueEntry): Promise<void> {
  try {
    await api.call("dequeue", { params: { entry_id: entry.entry_id }, auth: "required" });
    text($("#queue-status"), `Removed ${label(entry.track_id)}.`);
  } catch (err) {
    text($("#queue-status"), err instanceof ApiError ? err.message : "Not removed.");
  }
  await loadQueue();
}

// Drag and drop: the row under the pointer at the drop decides the place.
let dragging: number | null = null;
const queueList = $("#queue");
queueList.addEventListener("dragstart", (e) => {
  const row = (e.target as HTMLElement).closest<HTMLElement>("[data-entry-id]");
  if (!row) return;
  dragging = queue.findIndex((q) => q.entry_id === row.dataset.entryId);
  row.classList.add("dragging");
  e.dataTransfer?.setData("text/plain", row.dataset.entryId ?? "");
  if (e.dataTransfer) e.dataTransfer.effectAllowed = "move";
});
queueList.addEventListener("dragover", (e) => {
  if (dragging === null) return;
  e.preventDefault();
  if (e.dataTransfer) e.dataTransfer.dropEffect = "move";
});
queueList.addEventListener("dragend", () => {
  dragging = null;
  for (const r of queueList.querySelectorAll(".dragging")) r.classList.remove("dragging");
});
queueList.addEventListener("drop", (e) => {
  e.preventDefault();
  if (dragging === null) return;
  const rows = Array.from(queueList.querySelectorAll<HTMLElement>("[data-entry-id]"));
  const mids = rows.map((r) => {
    const box = r.getBoundingClientRect();
    return box.top + box.height / 2;
  });
  let to = dropIndex(mids, e.clientY);
  if (to > dragging) to -= 1; // the dragged row leaves its place first
  const from = dragging;
  dragging = null;
  void reorder(from, to);
});

// -- the catalog ---------------------------------------------------------------

async function loadCatalog(): Promise<void> {
  try {
    const page = await api.call<Page<Track>>("tracks", { params: { limit: 100, on_air: true } });
    for (const t of page.items) tracks.set(t.track_id, t);
    renderQueue();
  } catch {
    /* the queue shows ids then */
  }
}

$("#search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $<HTMLInputElement>("#search").value.trim().toLowerCase();
  const words = q.split(/\s+/).filter(Boolean);
  const hits = [...tracks.values()].filter((t) => {
    const hay = `${t.track_id} ${t.genre} ${t.musical_key} ${Math.round(t.bpm)} ${t.prompt} ${t.backend}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
  $("#results").replaceChildren(
    ...hits.slice(0, 20).map((t) =>
      h(
        "li",
        { "data-track-id": t.track_id },
        h("span", { class: "grow" }, trackTitle(t)),
        h("button", { type: "button", class: "small", "aria-label": `Queue ${trackTitle(t)}`, onclick: () => void enqueue(t) }, "Queue"),
      ),
    ),
  );
  if (!hits.length) $("#results").append(h("li", { class: "muted" }, "No track matches."));
});

async function enqueue(track: Track): Promise<void> {
  try {
    await api.call("enqueue", { body: { track_id: track.track_id }, auth: "required" });
    text($("#queue-status"), `Queued ${trackTitle(track)}.`);
    announce(`Queued ${trackTitle(track)}`);
  } catch (err) {
    text($("#queue-status"), err instanceof ApiError ? err.message : "Not queued.");
  }
  await loadQueue();
}

// -- the pipeline -----------------------------------------------------------------

const RUNS_KEY = "sonicforge.console.runs";

function keptRuns(): string[] {
  try {
    const ids = JSON.parse(localStorage.getItem(RUNS_KEY) ?? "[]") as unknown;
    return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === "string").slice(0, 10) : [];
  } catch {
    return [];
  }
}

async function loadRuns(): Promise<void> {
  let runs: PipelineRun[] = [];
  try {
    runs = (await api.call<{ items: PipelineRun[] }>("pipelineRuns", { auth: "required", params: { limit: 10 } })).items;
  } catch (err) {
    // Dagster unreachable: at least the runs this console launched, by id.
    const settled = await Promise.allSettled(keptRuns().map((id) => api.call<PipelineRun>("pipelineRun", { params: { run_id: id }, auth: "required" })));
    runs = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    text($("#sensor"), err instanceof ApiError ? `Runs: ${err.message}` : "Runs unavailable.");
  }
  try {
    text($("#sensor"), sensorText(await api.call<Sensor>("sensor", { auth: "required" })));
  } catch (err) {
    if (runs.length) text($("#sensor"), err instanceof ApiError ? `Sensor: ${err.message}` : "Sensor unavailable.");
  }
  $("#runs").replaceChildren(
    ...runs.map((r) => {
      const took = r.started_at ? ((r.ended_at ? Date.parse(r.ended_at) : Date.now()) - Date.parse(r.started_at)) / 1000 : null;
      return h(
        "tr",
        { "data-run-id": r.run_id },
        h(
          "th",
          { scope: "row" },
          links
            ? h("a", { href: `${links.dagster_url}/runs/${r.run_id}`, target: "_blank", rel: "noopener", "aria-label": `Run ${r.run_id} in the Dagster UI` }, h("code", {}, r.run_id.slice(0, 8)))
            : h("code", {}, r.run_id.slice(0, 8)),
          h("span", { class: "muted small" }, ` ${r.job_name}`),
        ),
        h("td", {}, h("span", { class: "pill", "data-state": r.status.toLowerCase() }, r.status)),
        h("td", {}, r.started_at ? ago(r.started_at) : "queued"),
        h("td", {}, duration(took)),
      );
    }),
  );
  if (!runs.length) $("#runs").append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No runs yet.")));
}

$("#batch-form").addEventListener("submit", (e) => {
  e.preventDefault();
  void (async () => {
    const genres = $<HTMLInputElement>("#batch-genres").value.split(/[\s,]+/).filter(Boolean);
    const count = Number($<HTMLInputElement>("#batch-count").value);
    const status = $("#batch-status");
    text(status, "Launching…");
    try {
      const run = await api.call<PipelineRun>("runPipeline", { body: { genres, count }, auth: "required" });
      localStorage.setItem(RUNS_KEY, JSON.stringify([run.run_id, ...keptRuns()].slice(0, 10)));
      text(status, `Run ${run.run_id.slice(0, 8)} ${run.status.toLowerCase()} (batch ${run.batch_id ?? "–"}).`);
      await loadRuns();
    } catch (err) {
      text(status, err instanceof ApiError ? `Not launched: ${err.message}` : "Not launched.");
    }
  })();
});

async function loadLinks(): Promise<void> {
  try {
    links = await api.config();
    if (!links) return;
    $<HTMLAnchorElement>("#dagster-link").href = links.dagster_url;
    $<HTMLAnchorElement>("#mlflow-link").href = `${links.mlflow_url}/#/experiments`;
  } catch {
    /* the links keep their placeholder */
  }
}

async function loadBenchmarks(): Promise<void> {
  try {
    const body = await api.call<{ items: { backend: string; model: string; device: string; figures: Record<string, unknown> }[] }>("benchmarks", {
      auth: "required",
    });
    $("#benchmarks").replaceChildren(
      ...body.items.map((b) => {
        const figures = Object.entries(b.figures)
          .filter(([, v]) => typeof v === "number")
          .slice(0, 4)
          .map(([k, v]) => `${k.replace(/_/g, " ")} ${(v as number).toFixed(2)}`)
          .join(", ");
        return h("li", {}, `${b.backend} (${b.model}, ${b.device}): ${figures}`);
      }),
    );
    if (!body.items.length) $("#benchmarks").append(h("li", { class: "muted" }, "No benchmark has been run (bench/generate.py)."));
  } catch {
    $("#benchmarks").replaceChildren(h("li", { class: "muted" }, "Unavailable."));
  }
}

// -- experiments (issue 10's endpoint when present) ---------------------------------

interface Experiment {
  experiment_id: string;
  description: string;
  status: string;
  metric: string;
  min_sample: number;
  variants: { name: string; weight: number }[];
}

let experimentResults = new Map<string, Record<string, unknown>[]>();

function cell(value: unknown): string {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(4);
  if (value === null || value === undefined) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

async function loadExperiments(): Promise<void> {
  const box = $("#experiments");
  try {
    const body = await api.optional<{ items: Experiment[] }>("experiments", { auth: "required" });
    if (body === null) {
      box.replaceChildren(h("p", { class: "muted small" }, "Experiment results appear here once the analytics endpoints are deployed."));
      return;
    }
    const blocks = body.items.map((x) => {
      const results = experimentResults.get(x.experiment_id) ?? [];
      const columns = results.length ? Object.keys(results[0] ?? {}).slice(0, 7) : [];
      return h(
        "article",
        { class: "experiment", "data-experiment": x.experiment_id },
        h("h3", {}, x.experiment_id, " ", h("span", { class: "pill", "data-state": x.status }, x.status)),
        h("p", { class: "muted small" }, `${x.description} Measured on ${x.metric}; at least ${x.min_sample} per variant.`),
        h("p", { class: "small" }, x.variants.map((v) => `${v.name} (${Math.round(v.weight * 100)} %)`).join(" vs ")),
        results.length
          ? h(
              "table",
              { class: "table" },
              h("caption", { class: "sr-only" }, `Results of ${x.experiment_id}`),
              h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c.replace(/_/g, " "))))),
              h("tbody", {}, ...results.map((r) => h("tr", {}, ...columns.map((c) => h("td", {}, cell(r[c])))))),
            )
          : h("p", { class: "muted small" }, "No results yet (the experiment_results asset computes them)."),
      );
    });
    box.replaceChildren(...(blocks.length ? blocks : [h("p", { class: "muted small" }, "No experiments defined.")]));
  } catch (err) {
    box.replaceChildren(h("p", { class: "muted small" }, err instanceof ApiError ? err.message : "Unavailable."));
  }
}

void enter();
