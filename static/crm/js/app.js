// Small behaviours for server-rendered pages; everything works without them.
(function () {
  "use strict";

  // Bulk actions: count the ticked rows, show the inputs the chosen action needs.
  function setupBulk(form) {
    const boxes = () => Array.from(form.querySelectorAll("input[name=selected]"));
    const all = form.querySelector("[data-select-all]");
    const count = form.querySelector("[data-bulk-count]");
    const action = form.querySelector("[data-bulk-action]");
    const submit = form.querySelector("[data-bulk-submit]");
    function refresh() {
      const ticked = boxes().filter((b) => b.checked).length;
      if (count) count.textContent = count.dataset.template.replace("%s", ticked);
      if (submit) submit.disabled = !(ticked && action && action.value);
      form.querySelectorAll("[data-for-action]").forEach((el) => {
        el.hidden = !action || el.dataset.forAction !== action.value;
      });
      if (all) all.checked = ticked > 0 && ticked === boxes().length;
    }
    form.addEventListener("change", (event) => {
      if (event.target === all) boxes().forEach((b) => (b.checked = all.checked));
      refresh();
    });
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-bulk]").forEach(setupBulk);
  });
})();
