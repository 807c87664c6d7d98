// forensics serve: drag-and-drop upload (one file per request, each answered on the page) and live scan
// progress over server-sent events. Local file, no libraries.
"use strict";

function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }

function vclass(v) {
  v = (v || "").toLowerCase();
  return v.startsWith("likely") ? "v-likely" : v === "inconclusive" ? "v-inconclusive" : v.startsWith("no sign") ? "v-clean" : "v-none";
}

async function uploadFiles(caseId, files) {
  const log = document.getElementById("upload-log");
  let accepted = 0;
  for (const file of files) {
    const line = el("div", "msg", "uploading " + file.name + " …");
    log.appendChild(line);
    const body = new FormData();
    body.append("file", file, file.name);
    try {
      const r = await fetch("/api/cases/" + caseId + "/files", { method: "POST", body: body, credentials: "same-origin" });
      const data = await r.json();
      for (const a of data.accepted || []) { line.className = "msg ok"; line.textContent = "✓ " + a.name + ": " + a.size + " bytes, sha256 " + a.sha256.slice(0, 16) + "…" + (a.new ? "" : " (already in the case)"); accepted++; }
      for (const x of data.refused || []) { line.className = "msg bad refused"; line.textContent = "✗ " + x.name + ": " + x.error; }
    } catch (err) {
      line.className = "msg bad refused"; line.textContent = "✗ " + file.name + ": the upload failed (" + err + ")";
    }
  }
  if (accepted) {  // reload for the new rows; the answers stay on the page after it
    const lines = Array.from(log.children).map(function (d) { return [d.className, d.textContent]; });
    sessionStorage.setItem("upload-log-" + caseId, JSON.stringify(lines));
    window.location.reload();
  }
}

function setupDrop() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const caseId = form.dataset.case, drop = document.getElementById("drop"), input = document.getElementById("file-input");
  const kept = sessionStorage.getItem("upload-log-" + caseId);
  if (kept) {
    sessionStorage.removeItem("upload-log-" + caseId);
    const log = document.getElementById("upload-log");
    for (const [cls, text] of JSON.parse(kept)) log.appendChild(el("div", cls, text));
  }
  ["dragenter", "dragover"].forEach(function (t) { drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.add("over"); }); });
  ["dragleave", "drop"].forEach(function (t) { drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.remove("over"); }); });
  drop.addEventListener("drop", function (ev) { uploadFiles(caseId, Array.from(ev.dataTransfer.files)); });
  input.addEventListener("change", function () { uploadFiles(caseId, Array.from(input.files)); input.value = ""; });
}

function fillResults(results) {
  for (const r of results || []) {
    const cell = document.querySelector('[data-verdict-file="' + r.file + '"]');
    if (cell) { cell.textContent = r.verdict || r.status; cell.className = "verdict " + vclass(r.verdict); }
    const p = document.querySelector('[data-prob-file="' + r.file + '"]');
    if (p) p.textContent = r.probability === null || r.probability === undefined ? "-" : r.probability.toFixed(3);
    const sm = document.querySelector('[data-summary-file="' + r.file + '"]');
    if (sm) sm.textContent = r.summary || (r.errors || []).join("; ");
  }
}

function watchScans() {
  document.querySelectorAll(".progress[data-scan]").forEach(function (box) {
    const status = box.dataset.status;
    if (status !== "queued" && status !== "running") return;
    const sid = box.dataset.scan, bar = box.querySelector(".bar"), text = box.querySelector(".ptext");
    const cell = document.querySelector('[data-status-scan="' + sid + '"]');
    const es = new EventSource("/api/scans/" + sid + "/events");
    es.addEventListener("progress", function (ev) {
      const p = JSON.parse(ev.data);
      bar.style.width = p.percent + "%";
      text.textContent = p.percent + "% (" + p.done + "/" + p.files + " files)";
      box.dataset.status = p.status;
      if (cell) cell.textContent = p.status + (p.attempts > 1 ? " (resumed)" : "");
      if (p.error) { box.parentNode.appendChild(el("div", "msg bad", p.error)); }
      if (p.results) fillResults(p.results);
      if (p.status === "done") {
        const model = document.querySelector('[data-model-scan="' + sid + '"]');
        if (model && p.bundle_sha256) { model.textContent = p.bundle_sha256.slice(0, 12); model.title = p.bundle_sha256; }
        const rep = document.querySelector('[data-report-scan="' + sid + '"]');
        if (rep) {
          rep.textContent = "";
          for (const name of ["report.html", "scan.json"]) {
            const a = el("a", "", name); a.href = "/scans/" + sid + "/out/" + name; a.target = "_blank";
            if (rep.childNodes.length) rep.appendChild(document.createTextNode(" · "));
            rep.appendChild(a);
          }
        }
      }
    });
    es.addEventListener("end", function () { es.close(); });
  });
}

document.addEventListener("DOMContentLoaded", function () { setupDrop(); watchScans(); });
