// Results charts (Chart.js, vendored) and the recompute button with its live progress bar.
// Every number drawn here is also in the data table under its chart; the words come from the
// page's data (data.text), in the organiser's language.
(function () {
  "use strict";
  const COLORS = {
    oppose: "#c2410c", neutral: "#a8a29e", support: "#1d4ed8", dk: "#d6d3d1",
    treatment: "#1d4ed8", control: "#9a3412", all: "#334155", t1: "#94a3b8", t2: "#1d4ed8",
  };
  // Distinct colours for opinion groups (Okabe-Ito, readable by colour-blind people).
  const GROUP_COLORS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00"];
  const pct = (v) => (v === null || v === undefined ? 0 : Number(v));
  // Split a label into lines for the axes: about 28 characters, 14 on a phone's narrow chart
  // (where longer lines would run off the chart's left edge).
  const lineChars = () => (window.innerWidth < 600 ? 14 : 28);
  const wrap = (text) => {
    const lines = [];
    const most = lineChars();
    for (const word of String(text || "").split(" ")) {
      const last = lines[lines.length - 1];
      if (last && (last + " " + word).length <= most) lines[lines.length - 1] = last + " " + word;
      else lines.push(word);
    }
    // At most three lines per label, so labels never run into their neighbours; the full text
    // is in the data table under the chart.
    return lines.length > 3 ? [...lines.slice(0, 2), `${lines[2]}…`] : lines;
  };
  const fixed = (v, d) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
  const format = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);

  // Writes "T1" and "T2" at the left edge of the plot, level with each option's two bars, so the
  // wave labels sit beside their bars instead of under a wrapped option name.
  const waveLabels = {
    id: "waveLabels",
    afterDatasetsDraw(chart) {
      const { ctx, chartArea } = chart;
      const first = chart.getDatasetMeta(0);
      const second = chart.getDatasetMeta(4);
      ctx.save();
      ctx.fillStyle = "#334155";
      ctx.font = `600 11px ${Chart.defaults.font.family}`;
      ctx.textBaseline = "middle";
      for (const [meta, label] of [[first, "T1"], [second, "T2"]]) {
        for (const bar of meta.data) ctx.fillText(label, chartArea.left + 4, bar.y);
      }
      ctx.restore();
    },
  };

  function distributions(canvas, rows, text) {
    const labels = rows.map((r) => wrap(r.label));
    const half = (r, wave) => pct(r[`neutral_${wave}`]) / 2;
    const datasets = [];
    for (const wave of ["t1", "t2"]) {
      // T1 lighter, T2 full colour: the pair reads as before and after.
      const alpha = wave === "t1" ? "99" : "";
      const set = (label, color, values) => datasets.push({
        label: wave === "t2" ? label : `${label} T1`, backgroundColor: color + alpha, data: values,
        stack: wave, wave, barPercentage: 0.9, categoryPercentage: 0.8,
      });
      set(text.oppose, COLORS.oppose, rows.map((r) => -pct(r[`oppose_${wave}`])));
      set(text.neutral, COLORS.neutral, rows.map((r) => -half(r, wave)));
      set(`${text.neutral} `, COLORS.neutral, rows.map((r) => half(r, wave)));
      set(text.support, COLORS.support, rows.map((r) => pct(r[`support_${wave}`])));
    }
    new Chart(canvas, {
      type: "bar",
      data: { labels, datasets },
      plugins: [waveLabels],
      options: {
        indexAxis: "y", maintainAspectRatio: false, animation: false,
        scales: {
          x: { stacked: true, min: -100, max: 100, ticks: { callback: (v) => `${Math.abs(v)}%` } },
          y: { stacked: true, ticks: { autoSkip: false } },
        },
        plugins: {
          // One legend entry per part (the T2 colours); T1 is the lighter bar of each pair.
          legend: { labels: { filter: (item) => !item.text.endsWith(" ") && !item.text.endsWith(" T1") } },
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const r = rows[ctx.dataIndex];
                const wave = ctx.dataset.wave;
                const part = ["oppose", "neutral", "neutral", "support"][ctx.datasetIndex % 4];
                if (r[`oppose_${wave}`] === null) return `${wave.toUpperCase()}: ${text.withheld}`;
                return `${wave.toUpperCase()} ${text[part]}: ${pct(r[`${part}_${wave}`]).toFixed(1)}% (${text.dont_know} ${pct(r[`dk_${wave}`]).toFixed(1)}%, n=${r.n})`;
              },
            },
          },
        },
      },
    });
  }

  // Dots with confidence intervals, one row per option and one series per arm.
  function intervals(canvas, rows, { value, series, axisTitle, text, significant }) {
    const items = [...new Set(rows.map((r) => r.label))];
    const names = [...new Set(rows.map(series))];
    const datasets = [];
    names.forEach((name, index) => {
      const mine = rows.filter((r) => series(r) === name);
      const offset = names.length > 1 ? (index - (names.length - 1) / 2) * 0.25 : 0;
      const y = (r) => items.indexOf(r.label) + offset;
      const color = COLORS[name] || COLORS.all;
      datasets.push({
        type: "scatter", label: `${text[name] || name} ${text.ci}`, showLine: true, pointRadius: 0,
        data: mine.flatMap((r) => [{ x: r.ci_low, y: y(r) }, { x: r.ci_high, y: y(r) }, { x: null, y: null }]),
        borderColor: color, borderWidth: 2, spanGaps: false,
      });
      datasets.push({
        type: "scatter", label: text[name] || name,
        data: mine.map((r) => ({ x: value(r), y: y(r), row: r })),
        borderColor: color, backgroundColor: mine.map((r) => (significant(r) ? color : "#ffffff")),
        pointRadius: 6, pointBorderWidth: 2,
      });
    });
    new Chart(canvas, {
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
          x: { title: { display: true, text: axisTitle },
               grid: { color: (ctx) => (ctx.tick.value === 0 ? "#334155" : "rgba(0,0,0,0.08)") } },
        },
        plugins: {
          legend: { labels: { filter: (item) => !item.text.endsWith(text.ci) } },
          tooltip: {
            filter: (ctx) => ctx.raw && ctx.raw.row,
            callbacks: {
              label: (ctx) => {
                const r = ctx.raw.row;
                return `${ctx.dataset.label}: ${fixed(value(r), 2)} [${fixed(r.ci_low, 2)}, ${fixed(r.ci_high, 2)}], p=${r.p_text}`;
              },
            },
          },
        },
      },
    });
  }

  // Each group's mean rating of each option: the group's profile, one colour per group.
  function groupProfiles(canvas, groups, text) {
    const options = groups.length ? groups[0].profile.map((p) => p.label) : [];
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: options.map(wrap),
        datasets: groups.map((g, i) => ({
          label: format(text.group, { number: g.number, size: g.size }),
          backgroundColor: GROUP_COLORS[i % GROUP_COLORS.length],
          data: g.profile.map((p) => p.mean),
        })),
      },
      options: {
        indexAxis: "y", maintainAspectRatio: false, animation: false,
        scales: { x: { title: { display: true, text: text.mean_rating } }, y: { ticks: { autoSkip: false } } },
      },
    });
  }

  function peaks(canvas, rows, text) {
    const arms = [...new Set(rows.map((r) => r.arm))];
    const value = (arm, wave, key) => {
      const row = rows.find((r) => r.arm === arm && Number(r.wave) === wave);
      return row ? row[key] : null;
    };
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: arms.map((a) => text[a] || a),
        datasets: [
          { label: `T1, ${text.axis}`, backgroundColor: COLORS.t1, data: arms.map((a) => value(a, 1, "pct_axis")) },
          { label: `T2, ${text.axis}`, backgroundColor: COLORS.t2, data: arms.map((a) => value(a, 2, "pct_axis")) },
          { label: `T1, ${text.best}`, backgroundColor: COLORS.t1 + "66", data: arms.map((a) => value(a, 1, "pct_best")) },
          { label: `T2, ${text.best}`, backgroundColor: COLORS.t2 + "66", data: arms.map((a) => value(a, 2, "pct_best")) },
        ],
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
      },
    });
  }

  // DRI per group: T1 and T2 bars side by side, one row per group (the arm's whole row first).
  function driBars(canvas, rows, text) {
    new Chart(canvas, {
      type: "bar",
      data: {
        // Group labels are short: on one line where the chart is wide (wrapped, a group's
        // number was left alone on a line in Ukrainian).
        labels: rows.map((r) => (window.innerWidth < 600 ? wrap(r.label) : r.label)),
        datasets: [
          { label: "T1", backgroundColor: COLORS.t1, data: rows.map((r) => r.dri_t1) },
          { label: "T2", backgroundColor: COLORS.t2, data: rows.map((r) => r.dri_t2) },
        ],
      },
      options: {
        indexAxis: "y", maintainAspectRatio: false, animation: false,
        scales: {
          // Up to 1 (every pair consistent) always shown, so a bar reads against the ideal.
          x: { max: 1, suggestedMin: -1, title: { display: true, text: text.dri },
               grid: { color: (ctx) => (ctx.tick.value === 0 ? "#334155" : "rgba(0,0,0,0.08)") } },
          y: { ticks: { autoSkip: false } },
        },
        plugins: {
          tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${fixed(ctx.raw, 3)} (n=${rows[ctx.dataIndex].n})` } },
        },
      },
    });
  }

  // The pairs' (r_C, r_P) points with the diagonal r_C = r_P, both axes -1..1.
  function driScatter(canvas, points, text, color) {
    new Chart(canvas, {
      type: "scatter",
      data: {
        datasets: [
          {
            label: text.consistent, data: [{ x: -1, y: -1 }, { x: 1, y: 1 }], showLine: true,
            pointRadius: 0, borderColor: "#334155", borderWidth: 1.5, borderDash: [6, 4],
            pointStyle: "line",
          },
          {
            label: text.pair, data: points.map(([x, y]) => ({ x, y })),
            backgroundColor: color + "55", borderColor: color + "99", pointRadius: 2.5,
          },
        ],
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: {
          x: { min: -1, max: 1, title: { display: true, text: text.r_c } },
          y: { min: -1, max: 1, title: { display: true, text: text.r_p } },
        },
        plugins: {
          legend: { labels: { usePointStyle: true, filter: (item) => item.datasetIndex === 0 } },
          tooltip: { callbacks: { label: (ctx) => `r_C ${fixed(ctx.raw.x, 2)}, r_P ${fixed(ctx.raw.y, 2)}` } },
        },
      },
    });
  }

  function recompute(text) {
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
      message.textContent = text.starting || "…";
      const response = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        message.textContent = body.error || text.not_started || "";
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
          message.textContent = format(text.failed || "%(error)s", { error: status.error || text.see_log });
          button.disabled = false;
        }
      }, 1000);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const node = document.getElementById("results-data");
    const data = node ? JSON.parse(node.textContent) : { text: {} };
    recompute(data.text);
    if (!node || !window.Chart) return;
    // Heights that depend on the number of items come as data: the CSP allows no style attribute,
    // while setting a style property from script is allowed.
    for (const box of document.querySelectorAll(".chart-box[data-height-rem]")) {
      // A phone wraps long labels onto up to three lines: charts that say so get the room.
      const phone = window.innerWidth < 600 && box.dataset.phoneHeightRem;
      box.style.height = `${Number(phone || box.dataset.heightRem)}rem`;
    }
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    const text = data.text;
    data.panels.forEach((panel) => {
      const canvas = document.getElementById(`chart-${panel.id}`);
      if (canvas) distributions(canvas, panel.distributions, text);
      for (const wave of panel.opinion_groups) {
        const groupCanvas = document.getElementById(`chart-${wave.id}`);
        if (groupCanvas) groupProfiles(groupCanvas, wave.groups, text);
      }
    });
    const did = document.getElementById("chart-did");
    if (did) {
      intervals(did, data.did, {
        value: (r) => r.did, series: () => "did", axisTitle: text.did, text,
        significant: (r) => r.significant,
      });
    }
    const forest = document.getElementById("chart-forest");
    if (forest) {
      intervals(forest, data.forest, {
        value: (r) => r.mean_diff, series: (r) => r.arm, axisTitle: text.change, text,
        significant: (r) => r.significant,
      });
    }
    const peaksCanvas = document.getElementById("chart-peaks");
    if (peaksCanvas) peaks(peaksCanvas, data.single_peakedness, text);
    if (data.dri) {
      const driCanvas = document.getElementById("chart-dri");
      if (driCanvas) driBars(driCanvas, data.dri.rows, text);
      data.dri.scatters.forEach((scatter) => {
        for (const wave of scatter.waves) {
          const canvas = document.getElementById(`chart-${wave.id}`);
          if (canvas) driScatter(canvas, wave.points, text, COLORS[scatter.arm] || COLORS.all);
        }
      });
    }
  });
})();
