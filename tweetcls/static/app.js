// The page talks to the same API as everyone else: /model, /predict, /predict/file.
"use strict";
const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function showStatus(message) { $("status").textContent = message; }

// A new request starts from a clean page: no answer of an earlier request stays beside its result or error.
function clearResults() {
  $("results").querySelector("tbody").replaceChildren();
  $("results").hidden = true;
}

function clearDownload() {
  const link = $("download");
  if (link) { URL.revokeObjectURL(link.href); link.remove(); }
}

async function errorOf(response) {
  try { const body = await response.json(); return body.error || JSON.stringify(body); }
  catch (_) { return `${response.status} ${response.statusText}`; }
}

function cardRow(name, value) {
  if (value === null || value === undefined || value === "") return;
  const dt = document.createElement("dt"); dt.textContent = name;
  const dd = document.createElement("dd"); dd.textContent = value;
  $("card").append(dt, dd);
}

function showLimits(limits) {
  if (!limits) return;
  for (const words of [limits.texts, limits.chars]) {
    const item = document.createElement("li");
    item.textContent = words.charAt(0).toUpperCase() + words.slice(1) + ".";
    $("limits").append(item);
  }
  $("file-limit").textContent = limits.file.charAt(0).toUpperCase() + limits.file.slice(1) + ".";
}

async function loadCard() {
  const response = await fetch("/model");
  if (!response.ok) { showError(await errorOf(response)); return; }
  const card = await response.json();
  $("subtitle").textContent = `${card.method || "model"} on ${card.dataset || "your data"}: ${card.label_names.join(", ")}`;
  showLimits(card.limits);
  cardRow("dataset", card.dataset);
  cardRow("labels", card.label_names.join(", "));
  cardRow("method", card.method);
  cardRow("base model", card.base_model);
  if (card.params_total) cardRow("parameters", `${card.params_total.toLocaleString()} (${card.params_trainable.toLocaleString()} trained)`);
  if (card.test && card.test.task_metric !== undefined) cardRow(`test ${card.task_metric}`, card.test.task_metric.toFixed(4));
  if (card.test && card.test.accuracy !== undefined) cardRow("test accuracy", card.test.accuracy.toFixed(4));
  cardRow("size", card.size_mb ? `${card.size_mb} MB` : "");
  cardRow("backend", card.backend);
  cardRow("trained", card.trained_utc ? card.trained_utc.replace("T", " ").replace(/\+00:00$/, " UTC") : "");
  if (card.min_confidence) cardRow("abstains below", card.min_confidence.toFixed(3));
  for (const text of card.examples || []) {
    const option = document.createElement("option");
    option.value = text; option.textContent = text.length > 70 ? text.slice(0, 67) + "…" : text;
    $("examples").append(option);
  }
}

function bars(probabilities) {
  const cell = document.createElement("td"); cell.className = "probabilities";
  for (const [name, p] of Object.entries(probabilities)) {
    const bar = document.createElement("div"); bar.className = "bar";
    bar.setAttribute("role", "img"); bar.setAttribute("aria-label", `${name} ${(100 * p).toFixed(1)}%`);
    const label = document.createElement("span"); label.className = "name"; label.textContent = name; label.title = name;
    const track = document.createElement("div"); track.className = "track";
    const fill = document.createElement("div"); fill.className = "fill"; fill.style.width = `${(100 * p).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span"); value.className = "value"; value.textContent = `${(100 * p).toFixed(0)}%`;
    bar.append(label, track, value);
    cell.append(bar);
  }
  return cell;
}

async function classify(event) {
  event.preventDefault();
  showError(""); clearResults();
  const texts = $("texts").value.split("\n").filter((t) => t.trim());
  if (!texts.length) { showError("Type at least one text (one per line)."); return; }
  $("classify").disabled = true; showStatus("Classifying…");
  try {
    const response = await fetch("/predict", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ texts }) });
    if (!response.ok) { showError(await errorOf(response)); return; }
    const { predictions } = await response.json();
    const body = $("results").querySelector("tbody");
    predictions.forEach((p, i) => {
      const row = document.createElement("tr");
      const text = document.createElement("td"); text.className = "text"; text.textContent = texts[i];
      const label = document.createElement("td"); label.className = "label"; label.textContent = p.empty ? "(empty)" : p.label;
      row.append(text, label, bars(p.probabilities));
      body.append(row);
    });
    $("results").hidden = false;
  } catch (err) {
    showError(`The server did not answer: ${err}`);
  } finally {
    $("classify").disabled = false; showStatus("");
  }
}

// The server names the download (RFC 5987: filename*=UTF-8''...); the chosen file's name is the fallback.
function downloadName(response, file) {
  const header = response.headers.get("Content-Disposition") || "";
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (utf8) { try { return decodeURIComponent(utf8[1]); } catch (_) { /* fall through */ } }
  return file.name.replace(/\.[^.]+$/, "") + "-predictions.csv";
}

async function upload(event) {
  event.preventDefault();
  showError(""); clearDownload();
  const file = $("file").files[0];
  if (!file) { showError("Choose a .csv or .txt file first."); return; }
  const form = new FormData(); form.append("file", file);
  $("upload").disabled = true; showStatus(`Classifying ${file.name}…`);
  try {
    const response = await fetch("/predict/file", { method: "POST", body: form });
    if (!response.ok) { showError(await errorOf(response)); return; }
    const blob = await response.blob();
    const link = document.createElement("a");
    link.id = "download"; link.href = URL.createObjectURL(blob); link.download = downloadName(response, file);
    link.textContent = `Download ${link.download}`;
    $("download-area").append(link);
    link.click();
  } catch (err) {
    showError(`The server did not answer: ${err}`);
  } finally {
    $("upload").disabled = false; showStatus("");
  }
}

$("examples").addEventListener("change", (e) => {
  if (!e.target.value) return;
  const area = $("texts");
  area.value = area.value.trim() ? `${area.value.trim()}\n${e.target.value}` : e.target.value;
  area.focus();
});
$("classify-form").addEventListener("submit", classify);
$("file-form").addEventListener("submit", upload);
loadCard();
