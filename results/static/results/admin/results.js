// Results charts (Chart.js, vendored) and the recompute button with its live progress bar.
(function () {
  "use strict";
  const COLORS = {
    oppose: "#c2410c", neutral: "#a8a29e", support: "#1d4ed8", dk: "#d6d3d1",
    treatment: "#1d4ed8", control: "#9a3412", all: "#334155", t1: "#94a3b8", t2: "#1d4ed8",
  };
  const pct = (v) => (v === null || v === undefined ? 0 : Number(v));
  // Split a long label into lines of about 30 characters for the axes.
  const wrap = (text) => {
    const lines = [];
    for (const word of String(text || "").split(" ")) {
      const last = lines[lines.length - 1];
      if (last && (last + " " + word).length <= 30) lines[lines.length - 1] = last + " " + word;
      else lines.push(word);
    }
    return lines;
  };
  const fixed = (v, d) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));

  function distributions(data) {
    const rows = [];
    for (const item of data.distributions) {
      for (const wave of ["t1", "t2"]) rows.push({ item, wave });
    }
    const labels = rows.map((r) => [...(r.wave === "t1" ? wrap(r.item.label) : []), r.wave.toUpperCase() + (r.item[`oppose_${r.wave}`] == null ? " (withheld: small group)" : "")]);
    const half = (r) => pct(r.item[`neutral_${r.wave}`]) / 2;
    const dataset = (label, color, values) => ({ label, backgroundColor: color, data: values, stack: "s" });
    new Chart(document.getElementById("chart-distributions"), {
      type: "bar",
      data: {
        labels,
        datasets: [
          dataset("oppose", COLORS.oppose, rows.map((r) => -pct(r.item[`oppose_${r.wave}`]))),
          dataset("neutral", COLORS.neutral, rows.map((r) => -half(r))),
          dataset("neutral ", COLORS.neutral, rows.map((r) => half(r))),
          dataset("support", COLORS.support, rows.map((r) => pct(r.item[`support_${r.wave}`]))),
        ],
      },
      options: {
        indexAxis: "y", maintainAspectRatio: false, animation: false,
        scales: {
          x: { stacked: true, min: -100, max: 100, ticks: { callback: (v) => `${Math.abs(v)}%` } },
          y: { stacked: true, ticks: { autoSkip: false } },
        },
        plugins: {
          legend: { labels: { filter: (item) => item.text !== "neutral " } },
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const r = rows[ctx.dataIndex];
                const part = ctx.dataset.label.trim();
                const value = pct(r.item[`${part}_${r.wave}`]);
                return `${part}: ${value.toFixed(1)}% (don't know ${pct(r.item[`dk_${r.wave}`]).toFixed(1)}%, n=${r.item.n})`;
              },
            },
          },
        },
      },
    });
  }

  function forest(data) {
    const items = [...new Set(data.forest.map((r) => r.label))];
    const arms = [...new Set(data.forest.map((r) => r.arm))];
    const datasets = [];
    arms.forEach((arm, index) => {
      const rows = data.forest.filter((r) => r.arm === arm);
      const offset = arms.length > 1 ? (index - (arms.length - 1) / 2) * 0.25 : 0;
      const y = (r) => items.indexOf(r.label) + offset;
      datasets.push({
        type: "scatter", label: `${arm} 95% CI`, showLine: false, pointRadius: 0,
        data: rows.flatMap((r) => [{ x: r.ci_low, y: y(r) }, { x: r.ci_high, y: y(r) }, { x: null, y: null }]),
        borderColor: COLORS[arm] || COLORS.all, borderWidth: 2, spanGaps: false,
      });
      datasets[datasets.length - 1].showLine = true;
      datasets.push({
        type: "scatter", label: arm,
        data: rows.map((r) => ({ x: r.mean_diff, y: y(r), row: r })),
        borderColor: COLORS[arm] || COLORS.all,
        backgroundColor: rows.map((r) => (r.significant ? COLORS[arm] || COLORS.all : "#ffffff")),
        pointRadius: 6, pointBorderWidth: 2,
      });
    });
    new Chart(document.getElementById("chart-forest"), {
      type: "scatter",
      data: { datasets },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: {
          y: {
            reverse: true, min: -0.5, max: items.length - 0.5,
            // One tick per item, at its integer position, labelled with the item.
            afterBuildTicks: (axis) => { axis.ticks = items.map((_, i) => ({ value: i })); },
            ticks: { autoSkip: false, callback: (v) => wrap(items[v]) },
            grid: { display: false },
          },
          x: { title: { display: true, text: "mean change T2 − T1 (scale points)" },
               grid: { color: (ctx) => (ctx.tick.value === 0 ? "#334155" : "rgba(0,0,0,0.08)") } },
        },
        plugins: {
          legend: { labels: { filter: (item) => !item.text.endsWith("CI") } },
          tooltip: {
            filter: (ctx) => ctx.raw && ctx.raw.row,
            callbacks: {
              label: (ctx) => {
                const r = ctx.raw.row;
                return `${r.arm}: ${fixed(r.mean_diff, 2)} [${fixed(r.ci_low, 2)}, ${fixed(r.ci_high, 2)}], Holm p=${fixed(r.p_holm, 3)}, n=${r.n}`;
              },
            },
          },
        },
      },
    });
  }

  function groups(data) {
    const byWave = (wave) => data.opinion_groups.filter((r) => Number(r.wave) === wave);
    const sizes = data.opinion_groups.map((r) => r.size || 0);
    const biggest = Math.max(1, ...sizes);
    const dataset = (wave, color) => ({
      label: `T${wave}`,
      data: byWave(wave).map((r) => ({ x: r.pc1, y: r.pc2, r: 6 + 24 * Math.sqrt((r.size || 0) / biggest), row: r })),
      backgroundColor: color + "99", borderColor: color,
    });
    new Chart(document.getElementById("chart-groups"), {
      type: "bubble",
      data: { datasets: [dataset(1, COLORS.t1), dataset(2, COLORS.t2)] },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: { x: { title: { display: true, text: "first component" } },
                  y: { title: { display: true, text: "second component" } } },
        plugins: { tooltip: { callbacks: { label: (ctx) => `T${ctx.raw.row.wave} group ${ctx.raw.row.group}: ${ctx.raw.row.size} people` } } },
      },
    });
  }

  function peaks(data) {
    const arms = [...new Set(data.single_peakedness.map((r) => r.arm))];
    const value = (arm, wave, key) => {
      const row = data.single_peakedness.find((r) => r.arm === arm && Number(r.wave) === wave);
      return row && row[key] !== null ? 100 * row[key] : null;
    };
    new Chart(document.getElementById("chart-peaks"), {
      type: "bar",
      data: {
        labels: arms,
        datasets: [
          { label: "T1, poll's axis", backgroundColor: COLORS.t1, data: arms.map((a) => value(a, 1, "share_axis")) },
          { label: "T2, poll's axis", backgroundColor: COLORS.t2, data: arms.map((a) => value(a, 2, "share_axis")) },
          { label: "T1, best ordering", backgroundColor: COLORS.t1 + "66", data: arms.map((a) => value(a, 1, "share_best")) },
          { label: "T2, best ordering", backgroundColor: COLORS.t2 + "66", data: arms.map((a) => value(a, 2, "share_best")) },
        ],
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
      },
    });
  }

  function recompute() {
    const form = document.getElementById("recompute");
    if (!form) return;
    const bar = form.querySelector("progress");
    const message = form.querySelector(".recompute-message");
    const button = form.querySelector("button");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      bar.hidden = false;
      bar.value = 0;
      message.textContent = "Starting…";
      const response = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        message.textContent = body.error || "The recompute could not start.";
        button.disabled = false;
        return;
      }
      const url = form.dataset.jobUrl.replace("JOB", encodeURIComponent(body.job_id));
      const timer = setInterval(async () => {
        const status = await (await fetch(url, { credentials: "same-origin" })).json().catch(() => null);
        if (!status) return;
        bar.value = status.progress || 0;
        message.textContent = status.message || status.state;
        if (status.state === "done" || status.state === "success") {
          clearInterval(timer);
          window.location.reload();
        } else if (status.state === "failed" || status.state === "failure") {
          clearInterval(timer);
          message.textContent = `Failed: ${status.error || "see the worker log"}`;
          button.disabled = false;
        }
      }, 1000);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    recompute();
    const node = document.getElementById("results-data");
    if (!node || !window.Chart) return;
    const data = JSON.parse(node.textContent);
    // Heights that depend on the number of items come as data: the CSP allows no style attribute,
    // while setting a style property from script is allowed.
    for (const box of document.querySelectorAll(".chart-box[data-height-rem]")) {
      box.style.height = `${Number(box.dataset.heightRem)}rem`;
    }
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    distributions(data);
    forest(data);
    groups(data);
    peaks(data);
  });
})();
