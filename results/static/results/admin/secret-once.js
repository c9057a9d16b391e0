// Selects the new secret when its field gets focus, ready to copy. A file rather than an
// inline handler: the Content Security Policy allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var field = document.getElementById("secret-once");
  if (field) {
    field.addEventListener("focus", function () {
      field.select();
    });
  }
});
