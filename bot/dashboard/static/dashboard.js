// kevolve dashboard: live updates by polling, and lineage nodes opened in place.
// Everything works without this script; it only saves reloads.
"use strict";

const POLL_MS = 2000;

function follow(root) {
  const url = root.dataset.live;
  let version = root.dataset.version || "";
  let busy = false;
  async function tick() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const node = currentNode();
      const query = "?since=" + encodeURIComponent(version) + (node ? "&node=" + node : "");
      const answer = await fetch(url + query, { credentials: "same-origin", cache: "no-store" });
      if (!answer.ok) return;
      const body = await answer.json();
      if (!body.version || body.version === version) return;
      version = body.version;
      root.dataset.version = version;
      if (root.dataset.reload) { location.reload(); return; }
      for (const part of root.querySelectorAll("[data-part]")) {
        const html = body[part.dataset.part];
        if (typeof html === "string") part.innerHTML = html;
      }
    } catch (error) {
      // The server restarted or the network hiccupped: try again on the next tick.
    } finally {
      busy = false;
    }
  }
  setInterval(tick, POLL_MS);
}

function currentNode() {
  const open = document.getElementById("node");
  return open ? open.dataset.node : "";
}

async function openNode(link, event) {
  const box = document.getElementById("node-box");
  const root = document.getElementById("live-root");
  const id = link.dataset.node;
  if (!box || !root || !id || !/^[0-9a-f]{1,64}$/.test(id)) return;
  event.preventDefault();
  box.classList.add("loading");
  try {
    const answer = await fetch(root.dataset.live.replace(/\/live$/, "/node/" + id), { credentials: "same-origin" });
    if (!answer.ok) { location.href = link.getAttribute("href"); return; }
    box.innerHTML = await answer.text();
    history.replaceState(null, "", "?node=" + id + "#node");
    for (const circle of document.querySelectorAll("svg.tree circle.chosen")) circle.classList.remove("chosen");
    const chosen = document.querySelector('svg.tree a[data-node="' + id + '"] circle');
    if (chosen) chosen.classList.add("chosen");
    box.scrollIntoView({ block: "nearest" });
  } finally {
    box.classList.remove("loading");
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-node]");
  if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey) openNode(link, event);
});

document.addEventListener("DOMContentLoaded", () => {
  for (const root of document.querySelectorAll("[data-live]")) follow(root);
});
