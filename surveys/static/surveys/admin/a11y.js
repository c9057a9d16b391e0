// Django's SelectFilter2 (the organisers picker) names its filter icons with aria-label on a
// plain span, which ARIA does not allow (axe: aria-prohibited-attr). As an image the icon
// keeps its name. SelectFilter2 builds the picker on window load, before this listener runs.
window.addEventListener("load", () => {
  "use strict";
  for (const icon of document.querySelectorAll(".selector .search-label-icon[aria-label]")) {
    if (!icon.hasAttribute("role")) icon.setAttribute("role", "img");
  }
});

// The preview shows a participant page, with its own banner and main landmarks, in a frame:
// the admin's own banner and main get names, so each landmark stays distinguishable
// (axe: landmark-unique).
window.addEventListener("DOMContentLoaded", () => {
  "use strict";
  const frame = document.querySelector(".preview-frame");
  if (!frame) return;
  document.getElementById("header")?.setAttribute("aria-label", frame.dataset.bannerLabel);
  document.getElementById("content-start")?.setAttribute("aria-label", frame.dataset.mainLabel);
});
