// The fashion-serve page: everything it shows comes from the service's own JSON API.

const $ = (selector, root = document) => root.querySelector(selector);
const SVG = "http://www.w3.org/2000/svg";
const STRONGEST = 12; // connections drawn to the winning class: the units that pushed hardest
const MAX_MAPS = 64; // feature maps drawn per layer

const state = { models: [], items: [], token: "" };

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

const percent = (p) => `${(100 * p).toFixed(1)} %`;

// Every call goes to this page's own origin; errors carry the API's own message.
async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = body && body.error;
    const message = (error && (error.message || error)) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

function imageForm(item) {
  const form = new FormData();
  form.append("image", item.blob, item.name);
  return { method: "POST", body: form };
}

// version=N or alias=A from the picker, and the preprocessing mode.
function query(extra = {}) {
  const params = new URLSearchParams(extra);
  const [kind, value] = $("#target").value.split(":");
  if (kind && value) params.set(kind, value);
  params.set("mode", $("#mode").value);
  return params.toString();
}

const modelPath = (name) => `/models/${encodeURIComponent(name)}`;

// ---- Classify ------------------------------------------------------------------------------

function addPicture(blob, name, truth = null) {
  const card = $("#result-template").content.firstElementChild.cloneNode(true);
  const item = { blob, name, truth, card };
  $(".result-title", card).textContent = name;
  const img = $(".picture img", card);
  img.addEventListener("load", () => img.classList.toggle("tiny", img.naturalWidth < 100));
  img.src = URL.createObjectURL(blob);
  img.alt = `The picture ${name}`;
  state.items.unshift(item);
  $("#results").prepend(card);
  classify(item);
}

async function classify(item) {
  const { card } = item;
  // A newer run (the picker changed meanwhile) owns the card: answers of older ones are dropped.
  const run = (item.run = (item.run || 0) + 1);
  const current = () => item.run === run;
  delete $(".network", card).dataset.ready;
  delete $(".seen canvas", card).dataset.ready;
  const error = $(".error", card);
  error.hidden = true;
  $(".result-body", card).hidden = false;
  $(".inside", card).hidden = false;
  $(".verdict", card).textContent = "Classifying…";
  $(".bars", card).replaceChildren();
  $(".unknown", card).hidden = true;
  $(".network", card).replaceChildren(element("p", { class: "hint" }, "Loading activations…"));
  const model = $("#model").value;
  const started = performance.now();
  const predicted = api(`${modelPath(model)}/predict?${query()}`, imageForm(item));
  // Settled at once, so a failure the card no longer shows (after a failed prediction) is no
  // unhandled rejection; shown only once the prediction itself has succeeded.
  const settle = (promise) => promise.then((body) => ({ body }), (failure) => ({ failure }));
  const seen = settle(api(`/preprocess?${query({ format: "json" })}`, imageForm(item)));
  const inside = settle(api(`${modelPath(model)}/activations?${query()}`, imageForm(item)));
  try {
    const answer = await predicted;
    const milliseconds = performance.now() - started;
    if (!current()) return;
    showAnswer(item, answer, milliseconds);
  } catch (failure) {
    if (!current()) return;
    error.textContent = `${failure.status || ""} ${failure.message}`.trim();
    error.hidden = false;
    $(".result-body", card).hidden = true;
    $(".inside", card).hidden = true;
    $(".result-meta", card).textContent = "";
    return;
  }
  seen.then(({ body, failure }) => {
    if (!current()) return;
    if (body) showSeen(card, body.images[0]);
    else $(".seen figcaption", card).textContent = `No preview: ${failure.message}`;
  });
  inside.then(({ body, failure }) => {
    if (!current()) return;
    if (body) showNetwork($(".network", card), body);
    else $(".network", card).replaceChildren(element("p", { class: "error" }, failure.message));
  });
}

function showAnswer(item, answer, milliseconds) {
  const { card, truth } = item;
  const prediction = answer.predictions[0];
  const { name, version, alias } = answer.model;
  $(".result-meta", card).textContent =
    `${name} v${version}${alias ? ` (${alias})` : ""} · answered in ${milliseconds.toFixed(0)} ms`;
  const names = Object.keys(prediction.probabilities);
  let verdict = `${prediction.label}: ${percent(prediction.confidence)}`;
  if (truth !== null) {
    verdict += truth === prediction.class_id ? " · correct" : ` · actually ${names[truth]}`;
  }
  const line = $(".verdict", card);
  line.textContent = verdict;
  line.dataset.label = prediction.label;
  showBars($(".bars", card), prediction.probabilities, prediction.class_id, truth);
  showJudgement(card, prediction, version);
}

// Issue 21: a version that judges its inputs may find a picture unlike its training data
// (in_distribution false; null: no judgement). Said plainly; the bars stay, greyed.
function showJudgement(card, prediction, version) {
  const unknown = prediction.in_distribution === false;
  const notice = $(".unknown", card);
  notice.textContent = unknown ? `This does not look like clothing to version ${version}.` : "";
  notice.hidden = !unknown;
  $(".bars", card).classList.toggle("greyed", unknown);
}

// The lecture's bar chart: the predicted class in blue, the true one in red when they differ.
function showBars(list, probabilities, top, truth = null) {
  list.replaceChildren();
  Object.entries(probabilities).forEach(([label, p], index) => {
    const row = element("li", { class: "bar", "data-class": label, "data-probability": String(p) });
    if (index === top) row.classList.add("top");
    if (index === truth && truth !== top) row.classList.add("truth");
    const track = element("span", { class: "track", "aria-hidden": "true" });
    const fill = element("span", { class: "fill" });
    fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
    track.append(fill);
    row.append(element("span", { class: "label" }, label), track,
      element("span", { class: "value" }, percent(p)));
    list.append(row);
  });
}

function paint(canvas, rows, scale = 1) {
  const height = rows.length;
  const width = rows[0].length;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  rows.forEach((row, y) => row.forEach((value, x) => {
    const level = Math.round(255 * Math.max(0, Math.min(1, value / scale)));
    image.data.set([level, level, level, 255], 4 * (y * width + x));
  }));
  context.putImageData(image, 0, 0);
}

function showSeen(card, seen) {
  const canvas = $(".seen canvas", card);
  paint(canvas, seen.pixels);
  canvas.setAttribute("aria-label", `The ${seen.width}×${seen.height} grey image the model received`);
  $(".seen figcaption", card).textContent =
    `What the model saw (${seen.width}×${seen.height}${seen.mode ? `, read as ${seen.mode}` : ""})`;
  canvas.dataset.ready = "true";
}

// ---- Inside the network ----------------------------------------------------------------------

function showNetwork(container, body) {
  container.replaceChildren();
  const dense = body.layers.filter((layer) => layer.kind === "dense");
  const maps = body.layers.filter((layer) => layer.kind === "maps");
  for (const layer of maps) container.append(featureMaps(layer));
  if (dense.length) container.append(diagram(dense, body));
  if (!body.layers.length) {
    container.append(element("p", { class: "hint" }, "This version has no hidden layer to show."));
  }
  container.dataset.ready = "true";
}

function featureMaps(layer) {
  const [channels, height, width] = layer.shape;
  const figure = element("figure", { class: "maps-layer", "data-layer": layer.name });
  figure.append(element("figcaption", {},
    `${layer.name}: ${channels} feature maps of ${height}×${width} (${layer.op}; bright = strong)`));
  const grid = element("div", { class: "maps" });
  const scale = Math.max(1e-6, ...layer.values.flat(2));
  layer.values.slice(0, MAX_MAPS).forEach((map, index) => {
    const canvas = element("canvas", { role: "img", "aria-label": `map ${index + 1}` });
    paint(canvas, map, scale);
    grid.append(canvas);
  });
  figure.append(grid);
  return figure;
}

// The seed's layered diagram: each dense layer a block of units (brightness = activation), the
// ten outputs (brightness = probability), and the strongest connections to the winning class.
function diagram(layers, body) {
  const cell = 12;
  const gap = 90;
  const blocks = layers.map((layer) => {
    const units = layer.values.length;
    const columns = Math.max(1, Math.ceil(Math.sqrt(units / 2)));
    return { layer, columns, rows: Math.ceil(units / columns) };
  });
  const height = Math.max(10 * 24, ...blocks.map((b) => b.rows * cell)) + 20;
  let x = 10;
  for (const block of blocks) {
    block.x = x;
    block.y = (height - block.rows * cell) / 2;
    x += block.columns * cell + gap;
  }
  const outputX = x + 8;
  const width = outputX + 150;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "diagram", role: "img" });
  const probabilities = Object.entries(body.prediction.probabilities);
  const top = body.prediction.class_id;
  const outputY = (index) => 20 + index * ((height - 40) / 9);
  const centre = (block, unit) => [
    block.x + (unit % block.columns) * cell + cell / 2,
    block.y + Math.floor(unit / block.columns) * cell + cell / 2,
  ];

  const readout = body.readout;
  const lines = svg("g", { class: "links" });
  root.append(lines);
  blocks.forEach((block) => {
    const values = block.layer.values;
    const strongest = Math.max(1e-6, ...values);
    const group = svg("g", { class: "units", "data-layer": block.layer.name });
    values.forEach((value, unit) => {
      const [cx, cy] = centre(block, unit);
      const node = svg("rect", {
        x: cx - cell / 2 + 1, y: cy - cell / 2 + 1, width: cell - 2, height: cell - 2, rx: 2,
        "fill-opacity": (0.08 + 0.92 * Math.max(0, value) / strongest).toFixed(3),
      });
      const title = svg("title");
      title.textContent = `unit ${unit}: ${value}`;
      node.append(title);
      group.append(node);
    });
    root.append(group);
    const label = svg("text", { x: block.x, y: block.y - 6, class: "caption" });
    label.textContent = `${values.length} units`;
    root.append(label);
    if (readout && readout.layer === block.layer.name) {
      const pushes = readout.contributions.map((c, unit) => [c, unit])
        .sort((a, b) => Math.abs(b[0]) - Math.abs(a[0])).slice(0, STRONGEST);
      const biggest = Math.max(1e-6, ...pushes.map(([c]) => Math.abs(c)));
      for (const [c, unit] of pushes) {
        const [ux, uy] = centre(block, unit);
        lines.append(svg("line", {
          x1: ux, y1: uy, x2: outputX, y2: outputY(top),
          class: c >= 0 ? "for" : "against",
          "stroke-width": (0.6 + 3 * Math.abs(c) / biggest).toFixed(2),
        }));
      }
    }
  });
  probabilities.forEach(([label, p], index) => {
    const node = svg("circle", {
      cx: outputX, cy: outputY(index), r: 7, class: index === top ? "output top" : "output",
      "fill-opacity": (0.08 + 0.92 * p).toFixed(3),
    });
    const text = svg("text", { x: outputX + 12, y: outputY(index) + 4 });
    text.textContent = `${label} ${percent(p)}`;
    root.append(node, text);
  });
  const names = probabilities.map(([label]) => label);
  root.setAttribute("aria-label", `Hidden units of ${layers.length} layer(s); the ${STRONGEST} ` +
    `strongest connections to ${names[top]}`);
  const figure = element("figure", { class: "network-diagram" });
  figure.append(root, element("figcaption", {}, "Brightness = activation. Lines: the units that " +
    `pushed hardest for ${names[top]} (blue) or against it (orange): activation × weight.`));
  return figure;
}

// ---- Pickers -------------------------------------------------------------------------------

function fillTargets() {
  const model = state.models.find((m) => m.name === $("#model").value);
  const target = $("#target");
  const previous = target.value;
  target.replaceChildren();
  if (!model) return;
  for (const [alias, version] of Object.entries(model.aliases)) {
    target.append(element("option", { value: `alias:${alias}` }, `${alias} (v${version})`));
  }
  for (const version of model.versions) {
    target.append(element("option", { value: `version:${version}` }, `version ${version}`));
  }
  if ([...target.options].some((o) => o.value === previous)) target.value = previous;
}

async function loadModels() {
  state.models = (await api("/models")).models;
  const select = $("#model");
  const previous = select.value || document.body.dataset.defaultModel;
  select.replaceChildren(...state.models.map((m) => element("option", { value: m.name }, m.name)));
  if (state.models.some((m) => m.name === previous)) select.value = previous;
  fillTargets();
}

function reclassifyAll() {
  for (const item of state.items) classify(item);
}

// ---- Inputs --------------------------------------------------------------------------------

function addFiles(files) {
  for (const file of files) addPicture(file, file.name || "pasted picture");
}

function wireInputs() {
  for (const input of [$("#files"), $("#camera")]) {
    input.addEventListener("change", () => {
      addFiles(input.files);
      input.value = "";
    });
  }
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles(event.dataTransfer.files);
  });
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      $("#files").click();
    }
  });
  document.addEventListener("paste", (event) => {
    const files = [...event.clipboardData.files].filter((f) => f.type.startsWith("image/"));
    if (files.length) addFiles(files);
  });
  $("#model").addEventListener("change", () => {
    fillTargets();
    reclassifyAll();
  });
  $("#target").addEventListener("change", reclassifyAll);
  $("#mode").addEventListener("change", reclassifyAll);
}

async function loadGallery() {
  const base = document.body.dataset.gallery;
  const entries = await api(`${base}gallery.json`);
  const list = $("#gallery");
  const credits = new Set();
  for (const entry of entries) {
    const what = entry.kind === "photo" ? `photo of a ${entry.label}` :
      entry.kind === "real" ? `${entry.label} drawn by others` : entry.label;
    // Drawn pictures are not test images: they name their source, as their licences ask.
    const origin = entry.kind === "real" ? entry.credit : `test image ${entry.index}`;
    if (entry.kind === "real") credits.add(entry.credit);
    const button = element("button", { type: "button", class: `sample ${entry.kind}`,
      "data-file": entry.file, title: `Classify ${origin}: ${what}` });
    button.append(element("img", { src: base + entry.file, alt: `${what} (${origin})`,
      width: 56, height: 56, loading: "lazy" }));
    button.addEventListener("click", async () => {
      const blob = await (await fetch(base + entry.file)).blob();
      const name = entry.kind === "real" ? `${entry.label} (${origin})` :
        `test image ${entry.index} (${entry.kind})`;
      addPicture(blob, name, entry.class_id);
    });
    const item = element("li");
    item.append(button);
    list.append(item);
  }
  if (credits.size) {
    list.after(element("p", { class: "credits" }, `Drawn pictures: ${[...credits].join("; ")}.`));
  }
}

// ---- Models --------------------------------------------------------------------------------

function adminButton(text, action) {
  const button = element("button", { type: "button", class: "admin" }, text);
  button.disabled = !state.token;
  button.addEventListener("click", action);
  return button;
}

async function manage(method, path, body) {
  const status = $("#admin-status");
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body) headers["Content-Type"] = "application/json";
  try {
    const answer = await api(path, { method, headers, body: body && JSON.stringify(body) });
    status.textContent = `${answer.model}: ${answer.alias} now serves version ${answer.version} ` +
      `(was ${answer.previous ?? "unset"}).`;
  } catch (failure) {
    status.textContent = `Refused: ${failure.status} ${failure.message}`;
  }
  await loadModels();
  await route();
}

// A table with a caption and column headings, plus a last column for the admin buttons.
function table(name, caption, headings) {
  const node = element("table", { class: name });
  const head = element("tr");
  for (const heading of headings) head.append(element("th", { scope: "col" }, heading));
  const actions = element("th", { scope: "col" });
  actions.append(element("span", { class: "visually-hidden" }, "actions"));
  head.append(actions);
  const thead = element("thead");
  thead.append(head);
  const body = element("tbody");
  node.append(element("caption", {}, caption), thead, body);
  return [node, body];
}

async function showModelList() {
  const container = $("#model-list");
  container.replaceChildren();
  for (const summary of state.models) {
    const model = await api(modelPath(summary.name));
    const article = element("article", { class: "model", "data-model": model.name });
    article.append(element("h3", {}, model.name));
    const [aliases, aliasRows] = table("aliases", "Aliases", ["alias", "version", "earlier versions", "canary", "shadow"]);
    for (const [alias, version] of Object.entries(model.aliases)) {
      const row = element("tr", { "data-alias": alias });
      const history = model.alias_history[alias] || [];
      const canary = (model.canaries || {})[alias];
      const shadow = (model.shadows || {})[alias];
      row.append(element("td", {}, alias), element("td", { class: "version" }, String(version)),
        element("td", {}, history.length ? history.join(" → ") : "none"),
        element("td", { class: "canary" }, canary ? `version ${canary.version} at ${canary.weight} %` : "none"),
        element("td", { class: "shadow" }, shadow ? `version ${shadow}` : "none"));
      const cell = element("td");
      cell.append(adminButton(`Roll back ${alias}`, () =>
        manage("DELETE", `${modelPath(model.name)}/aliases/${encodeURIComponent(alias)}`)));
      row.append(cell);
      aliasRows.append(row);
    }
    const [versions, versionRows] = table("versions", "Versions", ["version", "created", "test accuracy"]);
    const aliasInput = element("input", { type: "text", value: "production", list: `aliases-${model.name}`,
      pattern: "[a-z0-9][a-z0-9._\\-]{0,63}", class: "alias-name" });
    for (const entry of model.versions) {
      const row = element("tr", { "data-version": entry.version });
      const link = element("a", { href: `#models/${model.name}/${entry.version}` }, `version ${entry.version}`);
      const first = element("td");
      first.append(link);
      const accuracy = entry.test_accuracy == null ? "n/a" : percent(entry.test_accuracy);
      row.append(first, element("td", {}, entry.created_at || ""), element("td", {}, accuracy));
      const cell = element("td");
      cell.append(adminButton(`Promote v${entry.version}`, () =>
        manage("PUT", `${modelPath(model.name)}/aliases/${encodeURIComponent(aliasInput.value)}`,
          { version: entry.version })));
      row.append(cell);
      versionRows.append(row);
    }
    const aliasLabel = element("label", { class: "promote-to" }, "Promote to alias ");
    const datalist = element("datalist", { id: `aliases-${model.name}` });
    for (const alias of Object.keys(model.aliases)) datalist.append(element("option", { value: alias }));
    aliasLabel.append(aliasInput, datalist);
    article.append(aliases, aliasLabel, versions);
    container.append(article);
  }
}

function definitions(pairs) {
  const list = element("dl");
  for (const [term, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    list.append(element("dt", {}, term), element("dd", {}, String(value)));
  }
  return list;
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(2)} MB`;

async function showVersion(name, version) {
  const container = $("#version-detail");
  container.replaceChildren();
  if (!name || !version) return;
  const base = `${modelPath(name)}/versions/${encodeURIComponent(version)}`;
  const card = await api(base);
  const section = element("section", { class: "card", "aria-labelledby": "card-title" });
  section.append(element("h3", { id: "card-title", tabindex: "-1" }, `${name} version ${version}`));
  const metrics = card.metrics || {};
  const training = card.training || {};
  const architecture = card.architecture || {};
  const files = card.files || {};
  const quantized = card.quantization; // a version quantized from another: parity is against it
  section.append(definitions([
    ["created", card.created_at],
    ["architecture", architecture.name],
    ["weights", quantized && `int8 convolutions, quantized from version ${quantized.from_version}`],
    ["layers", (architecture.layers || []).join(" · ")],
    ["parameters", architecture.parameters?.toLocaleString("en")],
    ["model.onnx", files["model.onnx"] && megabytes(files["model.onnx"])],
    ["test accuracy", metrics.test_accuracy != null && percent(metrics.test_accuracy)],
    ["test loss", metrics.test_loss?.toFixed(4)],
    ["epochs", training.epochs],
    ["batch size", training.batch_size],
    ["optimizer", training.optimizer],
    ["learning rate", training.learning_rate &&
      `${training.learning_rate} (${training.learning_rate_schedule || "constant"})`],
    ["seed", training.seed],
    ["training time", training.wall_seconds && `${training.wall_seconds} s`],
    ["training images", card.data?.train_count?.toLocaleString("en")],
    quantized
      ? [`vs version ${quantized.from_version}`, card.parity &&
        `same top class on ${percent(card.parity.top1_agreement)} of the test set`]
      : ["Keras vs ONNX", card.parity && `max |Δ| ${card.parity.max_abs_diff.toExponential(1)}`],
    ["serving on", card.serving?.providers?.join(", ")],
  ]));
  if (metrics.per_class_accuracy) {
    const names = card.class_names || Object.keys(metrics.per_class_accuracy);
    const stored = metrics.per_class_accuracy; // a list in class order, or keyed by class name
    const values = Object.fromEntries(names.map((n, i) => [n, stored[Array.isArray(stored) ? i : n]]));
    const list = element("ol", { class: "bars per-class", "aria-label": "Test accuracy per class" });
    showBars(list, values, -1);
    section.append(element("h4", {}, "Test accuracy per class"), list);
  }
  const plots = [["training.png", "Training curves"], ["confusion.png", "Confusion matrix"],
    ["reliability.png", "Reliability diagram (calibration)"]];
  for (const [file, what] of plots) {
    if (!(file in files)) continue;
    const figure = element("figure", { class: "plot" });
    figure.append(element("img", { src: `${base}/files/${file}`, alt: `${what} of version ${version}`, loading: "lazy" }),
      element("figcaption", {}, what));
    section.append(figure);
  }
  const raw = element("p");
  raw.append(element("a", { href: base }, "The whole card as JSON"));
  section.append(raw);
  container.append(section);
  container.append(await liveSection(name, base, version));
  $("#card-title").focus();
}

// ---- Live answers against the test set (GET …/monitoring) ---------------------------------

// Two bars per class, live and test set, as shares of the answers: drift shows as a gap.
function classChart(live, test) {
  const names = Object.keys(live || test);
  const width = 320, row = 22, label = 110, span = width - label - 50;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${names.length * row}`, class: "class-chart", role: "img",
    "aria-label": "Share of answers per class: live (upper bar) against the test set (lower bar)" });
  const largest = Math.max(...names.flatMap((n) => [live?.[n] || 0, test?.[n] || 0]), 0.01);
  names.forEach((name, i) => {
    const text = svg("text", { x: label - 6, y: i * row + 14, "text-anchor": "end" });
    text.textContent = name;
    chart.append(text);
    [[live, "live", 3], [test, "test", 12]].forEach(([shares, kind, offset]) => {
      if (!shares) return;
      chart.append(svg("rect", { class: kind, x: label, y: i * row + offset, height: 8,
        width: (span * shares[name]) / largest, "data-class": name }));
    });
  });
  return chart;
}

// "98.2 % of 500 images against version 3": how often this version, as a shadow, agreed.
async function shadowAgreement(name, version) {
  const summary = await api(`${modelPath(name)}/shadows`);
  return summary.comparisons
    .filter((row) => row.version === Number(version) && row.agreement != null)
    .map((row) => `${percent(row.agreement)} of ${row.compared.toLocaleString("en")} images against version ${row.served_version} (${row.alias})`)
    .join("; ");
}

// The share of live answers flagged out of distribution, beside the test set's (the card's).
function unknownShare(ood) {
  if (!ood || ood.live_share == null) return null;
  const test = ood.test_share != null ? `; test set ${percent(ood.test_share)}` : "";
  return `${percent(ood.live_share)} of ${ood.judged.toLocaleString("en")} judged${test}`;
}

async function liveSection(name, base, version) {
  const [shown, agreement] = await Promise.all([api(`${base}/monitoring`), shadowAgreement(name, version)]);
  const section = element("section", { class: "live", "aria-labelledby": "live-title" });
  section.append(element("h3", { id: "live-title" }, `Live answers of version ${version}`));
  const feedback = shown.feedback;
  section.append(definitions([
    ["images answered", shown.answered.toLocaleString("en")],
    ["mean confidence", shown.mean_confidence != null && percent(shown.mean_confidence)],
    ["test accuracy", shown.test_accuracy != null && percent(shown.test_accuracy)],
    ["live accuracy", feedback.accuracy != null ? `${percent(feedback.accuracy)} of ${feedback.count} reported` : "no feedback yet"],
    ["drift (PSI)", shown.psi != null && `${shown.psi.toFixed(3)}, ${shown.psi_level}`],
    ["not clothing", unknownShare(shown.out_of_distribution)],
    ["agreement as a shadow", agreement],
  ]));
  if (shown.classes.live || shown.classes.test) {
    section.append(element("h4", {}, "Answers per class: live and on the test set"),
      classChart(shown.classes.live, shown.classes.test));
  }
  return section;
}

// ---- Views ---------------------------------------------------------------------------------

async function route() {
  const [view, name, version] = decodeURIComponent(location.hash.slice(1)).split("/");
  const current = view === "models" ? "models" : "classify";
  for (const section of document.querySelectorAll("[data-view]")) {
    section.hidden = section.dataset.view !== current;
  }
  for (const link of document.querySelectorAll("[data-view-link]")) {
    if (link.dataset.viewLink === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current === "models") {
    try {
      await showModelList();
      await showVersion(name, version);
    } catch (failure) {
      $("#admin-status").textContent = failure.message;
    }
  }
}

async function start() {
  wireInputs();
  $("#token").addEventListener("input", (event) => {
    state.token = event.target.value; // memory only: never a cookie, never storage
    for (const button of document.querySelectorAll("button.admin")) button.disabled = !state.token;
  });
  $("#admin").addEventListener("submit", (event) => event.preventDefault());
  window.addEventListener("hashchange", route);
  await Promise.all([loadModels(), loadGallery()]);
  await route();
  document.body.dataset.ready = "true";
  performance.mark("page-ready"); // bench/page.py reads it
}

start().catch((failure) => {
  const message = element("p", { class: "error", role: "alert" }, `The page could not start: ${failure.message}`);
  $("#main").prepend(message);
});
