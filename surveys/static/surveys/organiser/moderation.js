// After Hide or Keep the page comes back at the next card (#reason-N): give that card the
// keyboard focus too, so Tab continues from it rather than from the top of the page.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    if (!/^#reason-[0-9]+$/.test(window.location.hash)) return;
    const card = document.getElementById(window.location.hash.slice(1));
    if (card) card.focus();
  });
})();
