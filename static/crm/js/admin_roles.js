/* A role's permission grid (accounts.admin.PermissionGrid): the "all" box of a row or a
   column ticks or unticks its boxes and shows whether all, some or none are ticked.
   Ticking change, delete or export ticks view too: they need it (accounts.access). */
(function () {
  "use strict";

  const NEEDS_VIEW = ["change", "delete", "export"];

  function setUp(grid) {
    const boxes = () => Array.from(grid.querySelectorAll("input[name][data-action]"));
    const inRow = (key) =>
      Array.from(grid.querySelectorAll(`tr[data-record-type="${key}"] input[name]`));
    const inColumn = (action) => boxes().filter((box) => box.dataset.action === action);

    function show(toggle, group) {
      const ticked = group.filter((box) => box.checked).length;
      toggle.checked = group.length > 0 && ticked === group.length;
      toggle.indeterminate = ticked > 0 && ticked < group.length;
    }

    function refresh() {
      grid.querySelectorAll("[data-toggle-row]").forEach((toggle) =>
        show(toggle, inRow(toggle.dataset.toggleRow))
      );
      grid.querySelectorAll("[data-toggle-column]").forEach((toggle) =>
        show(toggle, inColumn(toggle.dataset.toggleColumn))
      );
    }

    function viewFor(box) {
      return box.closest("tr").querySelector('input[name][data-action="view"]');
    }

    grid.addEventListener("change", (event) => {
      const target = event.target;
      let changed = [];
      if (target.dataset.toggleRow !== undefined) changed = inRow(target.dataset.toggleRow);
      else if (target.dataset.toggleColumn !== undefined) changed = inColumn(target.dataset.toggleColumn);
      changed.forEach((box) => (box.checked = target.checked));
      if (target.name) changed = [target];
      changed.forEach((box) => {
        if (box.checked && NEEDS_VIEW.includes(box.dataset.action)) {
          const view = viewFor(box);
          if (view) view.checked = true;
        }
      });
      refresh();
    });
    refresh();
  }

  function start() {
    document.querySelectorAll("[data-permission-grid]").forEach(setUp);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
