// Refresh the live monitor in place: fetch the server-rendered fragment and swap it in.
(function () {
  "use strict";
  const box = document.getElementById("monitor");
  if (!box) return;
  const url = box.dataset.refreshUrl;
  const every = Number(box.dataset.refreshSeconds || 10) * 1000;
  async function refresh() {
    if (document.hidden) return;  // no load from a tab nobody looks at
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.ok) box.innerHTML = await response.text();
    } catch (error) {
      // A network blip: keep the last numbers and try again on the next tick.
    }
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
