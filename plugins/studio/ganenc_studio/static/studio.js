// ganenc studio page: plain JavaScript, no external assets.  The server does the work
// (see app.py); this file only sends what the controls say and shows what comes back.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, subject: null, sample: null, listeners: [] };

async function api(path, body, raw) {
  const options = body === undefined ? {} : { method: "POST" };
  if (raw) {
    options.body = raw.data;
    // a header holds Latin-1 only: the server decodes the percent-encoded name (Chinese, emoji)
    const name = encodeURIComponent(raw.name);
    options.headers = { "Content-Type": "application/octet-stream", "X-Filename": name };
  } else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers = { "Content-Type": "application/json" };
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok || data.error) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

function fmt(value, digits) {
  return value === null || value === undefined ? "∞" : Number(value).toFixed(digits);
}

function caption(panel, label) {
  const steps = panel.refine === "none" ? "" : `, ${panel.refine} ${panel.steps} steps`;
  return `${label}${steps}: PSNR ${fmt(panel.psnr, 2)} dB, SSIM ${fmt(panel.ssim, 3)}, ${fmt(panel.seconds, 2)} s`;
}

// -- the model and its directions ------------------------------------------------------------
async function loadInfo() {
  const info = await api("/api/info");
  state.info = info;
  $("model").textContent = `${info.gan} at ${info.resolution} px · encoder ${info.encoder} · ${info.device}`;
  $("workspace").textContent = info.workspace;
  for (const name of info.examples) {
    const img = document.createElement("img");
    img.src = `/api/examples/${encodeURIComponent(name)}`;
    img.alt = img.title = name;
    img.dataset.example = name;
    img.addEventListener("click", () => chooseExample(name, img));
    $("examples").appendChild(img);
  }
  for (const direction of info.directions) {
    const row = document.createElement("label");
    row.className = "slider";
    const accuracy = direction.accuracy == null ? "" : ` (accuracy ${fmt(direction.accuracy, 2)})`;
    row.title = `${direction.name}: ${direction.space} direction${accuracy}`;
    row.innerHTML = "<span></span><input type=range step=0.1 value=0><output>0.0</output>";
    row.querySelector("span").textContent = direction.name;
    const input = row.querySelector("input");
    input.min = -info.max_strength / 2;
    input.max = info.max_strength / 2;
    input.dataset.direction = direction.name;
    input.addEventListener("input", () => {
      row.querySelector("output").textContent = Number(input.value).toFixed(1);
      updateEdit();
    });
    $("direction-sliders").appendChild(row);
  }
  $("no-directions").hidden = info.directions.length > 0;
  if (info.layers) {
    $("layer-range").hidden = false;
    for (const id of ["layer-first", "layer-last"]) {
      $(id).max = info.layers - 1;
      $(id).addEventListener("input", updateEdit);
    }
    $("layer-last").value = info.layers - 1;
  }
  $("refine").addEventListener("change", () => {
    const mode = $("refine").value;
    $("steps").disabled = mode === "none";
    $("steps").value = info.refine[mode].default || 1;
    $("steps").max = info.refine[mode].max;
  });
}

function editState() {
  const strengths = {};
  for (const input of document.querySelectorAll("#direction-sliders input")) {
    strengths[input.dataset.direction] = Number(input.value);
  }
  const edit = { strengths };
  if (state.info && state.info.layers) {
    edit.layers = [Number($("layer-first").value), Number($("layer-last").value)];
  }
  return edit;
}

// -- choosing an image -----------------------------------------------------------------------
function setSubject(result, fromSample) {
  state.subject = result.subject;
  $("original").src = result.original || "";
  for (const id of ["recon-encoder", "recon-refined"]) $(id).removeAttribute("src");
  $("caption-encoder").textContent = "encoder";
  $("caption-refined").textContent = fromSample ? "a sample has no refinement" : "refined";
  $("invert").disabled = fromSample;
  for (const listener of state.listeners) listener(result);
}

async function chooseExample(name, img) {
  document.querySelectorAll(".examples img").forEach((el) => el.classList.remove("chosen"));
  img.classList.add("chosen");
  await withStatus(`opening ${name}…`, async () => {
    setSubject(await api(`/api/subjects?example=${encodeURIComponent(name)}`, {}));
    await invert();
  });
}

async function upload(file) {
  if (state.info && file.size > state.info.max_upload_bytes) {
    status(`${file.name} is larger than ${state.info.max_upload_bytes} bytes`, true);
    return;
  }
  await withStatus(`uploading ${file.name}…`, async () => {
    const data = await file.arrayBuffer();
    setSubject(await api("/api/subjects", {}, { data, name: file.name }));
    await invert();
  });
}

async function withStatus(text, work) {
  status(text);
  try {
    await work();
  } catch (error) {
    status(error.message, true);
  }
}

// -- inversion and refinement ----------------------------------------------------------------
async function invert() {
  if (!state.subject) return;
  const refine = $("refine").value;
  const body = { refine };
  if (refine !== "none") body.steps = Number($("steps").value);
  $("invert").disabled = true;
  $("progress").removeAttribute("value"); // indeterminate until the first report
  status(refine === "none" ? "encoding…" : `refining (${refine})…`);
  try {
    let result = await api(`/api/subjects/${state.subject}/invert`, body);
    if (result.job) result = await followJob(result.job);
    showInversion(result);
  } catch (error) {
    status(error.message, true);
  } finally {
    $("progress").value = 1;
    $("invert").disabled = false;
  }
}

async function followJob(job) {
  for (;;) {
    const progress = await api(`/api/jobs/${job}`);
    if (progress.status === "done") return progress.result;
    if (progress.status === "error") throw new Error(progress.error);
    if (progress.total) {
      $("progress").value = progress.done / progress.total;
      status(`refining: step ${progress.done} of ${progress.total}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function showInversion(result) {
  if (result.subject !== state.subject) return; // another image was chosen meanwhile
  $("recon-encoder").src = result.encoder.image;
  $("caption-encoder").textContent = caption(result.encoder, "encoder");
  if (result.refined) {
    $("recon-refined").src = result.refined.image;
    $("caption-refined").textContent = caption(result.refined, "refined");
  } else {
    $("recon-refined").removeAttribute("src");
    $("caption-refined").textContent = "refined: choose a refinement budget";
  }
  status(`done: ${result.refined ? "edits start from the refined latents" : "edits start from the encoder's latents"}`);
  $("results").dataset.subject = result.subject;
  updateEdit();
}

// -- editing: one request in flight, the latest slider values sent next -----------------------
let editBusy = false;
let editAgain = false;

async function updateEdit() {
  if (!state.subject) return;
  if (editBusy) {
    editAgain = true;
    return;
  }
  editBusy = true;
  try {
    const edit = editState();
    const subject = state.subject;
    const result = await api(`/api/subjects/${subject}/edit`, edit);
    $("edited").src = result.image;
    $("caption-edited").textContent = `edited in ${Math.round(result.seconds * 1000)} ms`;
    const query = `edit=${encodeURIComponent(JSON.stringify(edit))}`;
    $("download-png").href = `/api/subjects/${subject}/download/png?${query}`;
    $("download-latents").href = `/api/subjects/${subject}/download/latents?${query}`;
    for (const id of ["download-png", "download-latents"]) $(id).classList.remove("disabled");
  } catch (error) {
    status(error.message, true);
  } finally {
    editBusy = false;
    if (editAgain) {
      editAgain = false;
      updateEdit();
    }
  }
}

function resetSliders() {
  for (const input of document.querySelectorAll("#direction-sliders input")) {
    input.value = 0;
    input.parentElement.querySelector("output").textContent = "0.0";
  }
  updateEdit();
}

// -- generator samples -----------------------------------------------------------------------
let sampleBusy = false;

async function drawSample() {
  if (sampleBusy) return;
  sampleBusy = true;
  const truncation = Number($("truncation").value);
  try {
    const result = await api("/api/samples", { seed: Number($("seed").value), truncation });
    state.sample = result;
    $("sample-image").src = result.image;
    $("caption-sample").textContent = `seed ${$("seed").value}, truncation ${truncation.toFixed(2)}`;
    $("edit-sample").disabled = false;
  } catch (error) {
    $("caption-sample").textContent = error.message;
  } finally {
    sampleBusy = false;
  }
}

// -- wiring ------------------------------------------------------------------------------------
$("upload").addEventListener("change", (event) => {
  if (event.target.files.length) upload(event.target.files[0]);
});
$("invert").addEventListener("click", invert);
$("reset").addEventListener("click", resetSliders);
$("sample").addEventListener("click", drawSample);
$("sample-random").addEventListener("click", () => {
  $("seed").value = Math.floor(Math.random() * 100000);
  drawSample();
});
$("truncation").addEventListener("input", () => {
  $("truncation-value").textContent = Number($("truncation").value).toFixed(2);
  drawSample();
});
$("edit-sample").addEventListener("click", () => {
  if (!state.sample) return;
  setSubject(state.sample, true);
  status(`editing ${state.sample.name}`);
  updateEdit();
});

// What plugin panels may use (docs/studio.md).
window.studio = {
  api,
  current: () => state.subject,
  info: () => state.info,
  onSubject: (listener) => state.listeners.push(listener),
  editState,
};

loadInfo()
  .then(() => {
    document.body.dataset.ready = "1";
    drawSample();
  })
  .catch((error) => status(error.message, true));
