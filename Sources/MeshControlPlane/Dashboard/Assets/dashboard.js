// The SwiftMesh dashboard: polls the control plane's /api/v1/traffic and
// draws the services table and the topology as SVG. No framework: the
// control plane serves these three files as they are in the repository.
"use strict";

const REFRESH_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";

function tone(successRate) {
  if (successRate === null || successRate === undefined) return "idle";
  if (successRate >= 0.99) return "ok";
  if (successRate >= 0.95) return "warn";
  return "bad";
}

function rate(value) { return value === null || value === undefined ? "–" : value.toFixed(1); }
function percent(value) { return value === null || value === undefined ? "–" : (value * 100).toFixed(2) + "%"; }
function millis(value) { return value === null || value === undefined ? "–" : value.toFixed(1) + " ms"; }

function element(name, attributes, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function cell(text, dotTone) {
  const td = document.createElement("td");
  if (dotTone) {
    const dot = document.createElement("span");
    dot.className = `dot ${dotTone}`;
    td.appendChild(dot);
  }
  // Text nodes, never HTML: names come from what sidecars report.
  td.appendChild(document.createTextNode(text));
  return td;
}

function renderServices(services) {
  const body = document.querySelector("#services tbody");
  body.replaceChildren(...services.map((service) => {
    const row = document.createElement("tr");
    row.dataset.service = service.name;
    const health = service.instances === 0 ? "idle" : service.healthyInstances === service.instances ? "ok" : "bad";
    row.append(
      cell(service.name, tone(service.successRate)),
      cell(`${service.healthyInstances}/${service.instances}`, health),
      cell(rate(service.requestsPerSecond)), cell(percent(service.successRate)),
      cell(millis(service.latencyP50Ms)), cell(millis(service.latencyP99Ms)),
      cell(service.source || "–"));
    row.dataset.source = service.source || "";
    row.dataset.tone = tone(service.successRate);
    return row;
  }));
}

// Services on a circle, each edge a curve from caller to callee with an arrowhead.
function renderTopology(services, edges) {
  const svg = document.getElementById("topology");
  const width = 800, height = 460, radius = 36;
  const center = { x: width / 2, y: height / 2 };
  const ring = Math.min(width, height) / 2 - 70;
  const positions = new Map();
  services.forEach((service, index) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * index) / Math.max(1, services.length);
    const spread = services.length === 1 ? 0 : ring;
    positions.set(service.name, { x: center.x + spread * Math.cos(angle), y: center.y + spread * Math.sin(angle) });
  });
  const children = [];
  const defs = element("defs");
  for (const name of ["ok", "warn", "bad", "idle"]) {
    const marker = element("marker", { id: `arrow-${name}`, viewBox: "0 0 10 10", refX: "10", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
    marker.appendChild(element("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: `var(--${name === "idle" ? "idle" : name})` }));
    defs.appendChild(marker);
  }
  children.push(defs);
  for (const edge of edges) {
    const from = positions.get(edge.from), to = positions.get(edge.to);
    if (!from || !to) continue;
    const dx = to.x - from.x, dy = to.y - from.y, length = Math.hypot(dx, dy) || 1;
    const ux = dx / length, uy = dy / length;
    // Curved a little to one side, so that calls both ways do not overlap.
    const bend = { x: (from.x + to.x) / 2 - uy * 40, y: (from.y + to.y) / 2 + ux * 40 };
    const start = { x: from.x + ux * radius, y: from.y + uy * radius };
    const end = { x: to.x - ux * (radius + 2), y: to.y - uy * (radius + 2) };
    const kind = tone(edge.successRate);
    const group = element("g", { class: `edge ${kind}`, "data-from": edge.from, "data-to": edge.to });
    group.appendChild(element("path", { d: `M ${start.x} ${start.y} Q ${bend.x} ${bend.y} ${end.x} ${end.y}`,
      "marker-end": `url(#arrow-${kind})` }));
    group.appendChild(element("text", { x: bend.x, y: bend.y },
      `${rate(edge.requestsPerSecond)} rps · ${percent(edge.successRate)} · p99 ${millis(edge.latencyP99Ms)}`));
    children.push(group);
  }
  for (const service of services) {
    const at = positions.get(service.name);
    const group = element("g", { class: `node ${tone(service.successRate)}`, "data-service": service.name });
    group.appendChild(element("circle", { cx: at.x, cy: at.y, r: radius }));
    group.appendChild(element("text", { x: at.x, y: at.y + 4 }, service.name));
    group.appendChild(element("text", { x: at.x, y: at.y + radius + 16, class: "detail" },
      `${service.healthyInstances}/${service.instances} up · ${rate(service.requestsPerSecond)} rps`));
    children.push(group);
  }
  svg.replaceChildren(...children);
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/api/v1/traffic", { cache: "no-store" });
    if (!response.ok) throw new Error(`the control plane answered ${response.status}`);
    const traffic = await response.json();
    document.getElementById("window").textContent = `(last ${traffic.windowSeconds} s)`;
    renderServices(traffic.services);
    renderTopology(traffic.services, traffic.edges);
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    status.classList.remove("stale");
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  } catch (error) {
    status.textContent = `cannot reach the control plane: ${error.message}`;
    status.classList.add("stale");
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
