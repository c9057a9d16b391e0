// Starts Redoc on the API reference page (drf-spectacular's inline start script, as a file).
(function () {
  "use strict";
  const container = document.getElementById("redoc-container");
  const settings = JSON.parse(container.dataset.settings || "{}");
  Redoc.init(container.dataset.schemaUrl, settings, container);
})();
