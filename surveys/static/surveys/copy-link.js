// The wait page's "Copy the link" button. Without JavaScript the button stays hidden and the
// read-only field holds the link to select and copy by hand; with it, one press copies.
(function () {
  "use strict";
  document.querySelectorAll("button.copy-button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.dataset.copy);
    var status = button.parentElement.querySelector(".copy-status");
    if (!field) {
      return;
    }
    button.hidden = false;
    field.addEventListener("focus", function () {
      field.select();
    });
    button.addEventListener("click", function () {
      field.select();
      var done = function () {
        if (status) {
          status.textContent = button.dataset.copied;
        }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          document.execCommand("copy");
          done();
        });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });
})();
