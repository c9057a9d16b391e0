// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Move focus to the error summary so screen readers announce it and keyboard users start there.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  // "Don't know" on a number or text question clears what was typed, and typing clears it.
  document.querySelectorAll('input[type="checkbox"][name$=".dk"]').forEach(function (box) {
    var field = document.getElementById(box.id.replace(/-dk$/, ""));
    if (!field) { return; }
    box.addEventListener("change", function () { if (box.checked) { field.value = ""; } });
    field.addEventListener("input", function () { if (field.value) { box.checked = false; } });
  });
  // "Don't know" in a multiple choice excludes the other answers.
  document.querySelectorAll('.q-multiple').forEach(function (group) {
    var boxes = group.querySelectorAll('input[type="checkbox"]');
    boxes.forEach(function (box) {
      box.addEventListener("change", function () {
        if (!box.checked) { return; }
        boxes.forEach(function (other) {
          if (other !== box && (box.value === "dk" || other.value === "dk")) { other.checked = false; }
        });
      });
    });
  });
  // A rank chosen for one option is taken from the option that had it, so ranks stay unique.
  document.querySelectorAll('.q-ranking').forEach(function (group) {
    var selects = group.querySelectorAll("select");
    selects.forEach(function (select) {
      select.addEventListener("change", function () {
        selects.forEach(function (other) {
          if (other !== select && select.value && other.value === select.value) { other.value = ""; }
        });
      });
    });
  });
})();
