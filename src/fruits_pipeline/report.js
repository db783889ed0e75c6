// report.html's only script, embedded by report.py: no library, no network.
// 1. Tables: "show all" unfolds a folded table; a header click sorts a sortable one.
// 2. The 2-D projection: a canvas of the points in #points (JSON); hover names a point (label
//    and path), a class typed or picked in #pick (or a clicked point, or #class=NAME in the
//    address) is highlighted and the others greyed.
// 3. #view=ID in the address scrolls to that section.
"use strict";

for (const button of document.querySelectorAll("button.unfold")) {
  button.addEventListener("click", () => {
    button.previousElementSibling.classList.remove("folded");
    button.remove();
  });
}

for (const header of document.querySelectorAll("table.sortable th")) {
  header.addEventListener("click", () => {
    const table = header.closest("table");
    const column = header.cellIndex;
    const ascending = header.dataset.order !== "asc";
    for (const other of table.querySelectorAll("th")) delete other.dataset.order;
    header.dataset.order = ascending ? "asc" : "desc";
    const key = (row) => {
      const cell = row.cells[column];
      return cell.dataset.v !== undefined ? Number(cell.dataset.v) : cell.textContent;
    };
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    body.append(...rows);
  });
}

const source = document.getElementById("points");
if (source) {
  const data = JSON.parse(source.textContent);
  const canvas = document.getElementById("scatter");
  const context = canvas.getContext("2d");
  const tip = document.getElementById("tip");
  const pick = document.getElementById("pick");
  const picked = document.getElementById("picked");
  const margin = 40;
  const span = (values) => {
    let [low, high] = [Math.min(...values), Math.max(...values)];
    if (!(high > low)) [low, high] = [low - 1, high + 1];
    return [low, high];
  };
  const [x0, x1] = span(data.x);
  const [y0, y1] = span(data.y);
  const px = (i) => margin + ((data.x[i] - x0) / (x1 - x0)) * (canvas.width - 2 * margin);
  const py = (i) => canvas.height - margin - ((data.y[i] - y0) / (y1 - y0)) * (canvas.height - 2 * margin);
  let highlighted = -1;

  const dot = (i, radius, colour) => {
    context.beginPath();
    context.arc(px(i), py(i), radius, 0, 2 * Math.PI);
    context.fillStyle = colour;
    context.fill();
  };

  const draw = () => {
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.strokeStyle = "#ccc";
    context.strokeRect(margin, margin, canvas.width - 2 * margin, canvas.height - 2 * margin);
    context.fillStyle = "#555";
    context.font = "12px system-ui, sans-serif";
    context.fillText("principal component 1", canvas.width / 2 - 60, canvas.height - 12);
    context.fillText("principal component 2", 4, 24);
    for (let i = 0; i < data.x.length; i++) {
      if (highlighted < 0) dot(i, 2.5, data.colours[data.label[i]]);
      else if (data.label[i] !== highlighted) dot(i, 2, "#d9d9d9");
    }
    if (highlighted >= 0) {
      for (let i = 0; i < data.x.length; i++) {
        if (data.label[i] === highlighted) {
          dot(i, 5, "#000");
          dot(i, 3.8, data.colours[highlighted]);
        }
      }
    }
  };

  const highlight = (name) => {
    highlighted = data.labels.indexOf(name);
    const count = data.label.filter((l) => l === highlighted).length;
    picked.textContent = highlighted < 0 ? (name ? `no class named "${name}"` : "")
      : `${name}: ${count} points highlighted`;
    if (pick.value !== name) pick.value = name;
    draw();
  };

  const nearest = (event) => {
    const box = canvas.getBoundingClientRect();
    const [mx, my] = [(event.clientX - box.left) * (canvas.width / box.width),
      (event.clientY - box.top) * (canvas.height / box.height)];
    let [best, distance] = [-1, 64];
    for (let i = 0; i < data.x.length; i++) {
      const d = (px(i) - mx) ** 2 + (py(i) - my) ** 2;
      if (d < distance) [best, distance] = [i, d];
    }
    return best;
  };

  canvas.addEventListener("mousemove", (event) => {
    const i = nearest(event);
    if (i < 0) { tip.style.display = "none"; return; }
    tip.textContent = `${data.labels[data.label[i]]}\n${data.path[i]}`;
    tip.style.left = `${event.pageX + 12}px`;
    tip.style.top = `${event.pageY + 12}px`;
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  canvas.addEventListener("click", (event) => {
    const i = nearest(event);
    if (i >= 0) highlight(data.labels[data.label[i]]);
  });
  pick.addEventListener("input", () => {
    if (data.labels.includes(pick.value) || pick.value === "") highlight(pick.value);
  });
  pick.addEventListener("change", () => highlight(pick.value));
  document.getElementById("clear").addEventListener("click", () => highlight(""));
  const wanted = new URLSearchParams(location.hash.slice(1)).get("class");
  if (wanted) highlight(wanted); else draw();
}

// #view=ID scrolls to that section on load (a link, or a screenshot, can open a given view).
const view = document.getElementById(new URLSearchParams(location.hash.slice(1)).get("view"));
if (view) view.scrollIntoView();
