// The page talks to the same API as everyone else: /model, /predict, /predict/file.
"use strict";
const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
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

async function loadCard() {
  const response = await fetch("/model");
  if (!response.ok) { showError(await errorOf(response)); return; }
  const card = await response.json();
  $("subtitle").textContent = `${card.method || "model"} on ${card.dataset || "your data"}: ${card.label_names.join(", ")}`;
  cardRow("dataset", card.dataset);
  cardRow("labels", card.label_names.join(", "));
  cardRow("method", card.method);
  cardRow("base model", card.base_model);
  if (card.params_total) cardRow("parameters", `${card.params_total.toLocaleString()} (${card.params_trainable.toLocaleString()} trained)`);
  if (card.test && card.test.task_metric !== undefined) cardRow(`test ${card.task_metric}`, card.test.task_metric.toFixed(4));
  if (card.test && card.test.accuracy !== undefined) cardRow("test accuracy", card.test.accuracy.toFixed(4));
  cardRow("size", card.size_mb ? `${card.size_mb} MB` : "");
  cardRow("backend", card.backend);
  cardRow("trained", card.trained_utc);
  if (card.min_confidence) cardRow("abstains below", card.min_confidence.toFixed(3));
  for (const text of card.examples || []) {
    const option = document.createElement("option");
    option.value = text; option.textContent = text.length > 70 ? text.slice(0, 67) + "…" : text;
    $("examples").append(option);
  }
}

function bars(probabilities) {
  const cell = document.createElement("td");
  for (const [name, p] of Object.entries(probabilities)) {
    const bar = document.createElement("div"); bar.className = "bar";
    bar.setAttribute("role", "img"); bar.setAttribute("aria-label", `${name} ${(100 * p).toFixed(1)}%`);
    const label = document.createElement("span"); label.className = "name"; label.textContent = name;
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
  showError("");
  const texts = $("texts").value.split("\n").filter((t) => t.trim());
  if (!texts.length) { showError("Type at least one text (one per line)."); return; }
  $("classify").disabled = true;
  try {
    const response = await fetch("/predict", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ texts }) });
    if (!response.ok) { showError(await errorOf(response)); return; }
    const { predictions } = await response.json();
    const body = $("results").querySelector("tbody");
    body.replaceChildren();
    predictions.forEach((p, i) => {
      const row = document.createElement("tr");
      const text = document.createElement("td"); text.textContent = texts[i];
      const label = document.createElement("td"); label.className = "label"; label.textContent = p.label;
      row.append(text, label, bars(p.probabilities));
      body.append(row);
    });
    $("results").hidden = false;
  } catch (err) {
    showError(`The server did not answer: ${err}`);
  } finally {
    $("classify").disabled = false;
  }
}

async function upload(event) {
  event.preventDefault();
  showError("");
  const file = $("file").files[0];
  if (!file) { showError("Choose a .csv or .txt file first."); return; }
  const form = new FormData(); form.append("file", file);
  $("upload").disabled = true;
  try {
    const response = await fetch("/predict/file", { method: "POST", body: form });
    if (!response.ok) { showError(await errorOf(response)); return; }
    const blob = await response.blob();
    const link = $("download");
    link.href = URL.createObjectURL(blob);
    link.download = file.name.replace(/\.[^.]+$/, "") + "-predictions.csv";
    link.hidden = false;
    link.click();
  } catch (err) {
    showError(`The server did not answer: ${err}`);
  } finally {
    $("upload").disabled = false;
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
