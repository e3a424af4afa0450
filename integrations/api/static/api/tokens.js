// The API tokens page: copy a new token to the clipboard.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy-target"));
    field.select();
    var done = function () {
      button.querySelector("[data-copy-label]").textContent = button.getAttribute("data-copied");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done);
    } else {
      document.execCommand("copy");
      done();
    }
  });
})();
