/* The pipeline admin's stage editor (templates/admin/pipelines/stage_inline.html):
   stages are dragged by their handle (SortableJS, vendored) or moved with their arrows,
   and each stage's hidden order field is rewritten to 10, 20, 30… in the new order.
   A stage added with "Add another" gets the order after the last one. */
(function () {
  "use strict";

  const STEP = 10;

  function rows(list) {
    return Array.from(list.querySelectorAll("[data-stage-row]")).filter(
      (row) => !row.classList.contains("empty-form")
    );
  }

  function orderInput(row) {
    return row.querySelector("input[data-stage-order]");
  }

  function renumber(list) {
    rows(list).forEach((row, index) => {
      const input = orderInput(row);
      if (input) input.value = String((index + 1) * STEP);
    });
  }

  function move(row, direction) {
    const list = row.closest("[data-stage-list]");
    const all = rows(list);
    const index = all.indexOf(row);
    const target = all[index + (direction === "up" ? -1 : 1)];
    if (!target) return;
    if (direction === "up") target.before(row);
    else target.after(row);
    renumber(list);
    row.querySelector(`[data-stage-move="${direction}"]`).focus();
  }

  function setUp(list) {
    if (list.dataset.stageReady) return;
    list.dataset.stageReady = "1";
    if (window.Sortable) {
      window.Sortable.create(list, {
        handle: "[data-stage-handle]",
        draggable: "[data-stage-row]:not(.empty-form)",
        animation: 150,
        // On touch screens a long press starts a drag; a swipe still scrolls.
        delay: 250,
        delayOnTouchOnly: true,
        onEnd: () => renumber(list),
      });
    }
    list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-stage-move]");
      if (button) {
        event.preventDefault();
        move(button.closest("[data-stage-row]"), button.dataset.stageMove);
      }
    });
  }

  document.addEventListener("formset:added", (event) => {
    const row = event.target;
    const list = row.closest && row.closest("[data-stage-list]");
    if (!list) return;
    const orders = rows(list)
      .filter((other) => other !== row)
      .map((other) => parseInt(orderInput(other)?.value, 10) || 0);
    const input = orderInput(row);
    if (input) input.value = String((orders.length ? Math.max(...orders) : 0) + STEP);
  });

  function start() {
    document.querySelectorAll("[data-stage-list]").forEach(setUp);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
