// The pipeline board: drag a card to another column (SortableJS), or use a card's
// "Move to…" menu (phones); either posts the move with htmx. The server answers with
// out-of-band swaps: the card and the columns' totals, a small form in the modal, or a
// message and the columns as they are in the database.
(function () {
  "use strict";

  function board() {
    return document.getElementById("board");
  }

  function toast(text, level) {
    const box = document.getElementById("board-toasts");
    if (!box) return;
    const alert = document.createElement("div");
    alert.className = "alert alert-" + (level || "danger") + " alert-dismissible app-board-toast";
    alert.setAttribute("role", "alert");
    alert.dataset.testid = "board-message";
    alert.textContent = text;
    box.appendChild(alert);
    fade(alert);
  }

  function fade(alert) {
    window.setTimeout(() => alert.remove(), 8000);
  }

  // Where a card was before it moved on the page, to put it back if the request fails.
  function remember(card, parent, next) {
    card._origin = { parent: parent, next: next };
  }

  function restore(card) {
    const origin = card && card._origin;
    if (!origin || !origin.parent.isConnected) return;
    origin.parent.insertBefore(card, origin.next && origin.next.isConnected ? origin.next : null);
  }

  function sendMove(card, toStage) {
    const root = board();
    card.classList.add("app-card-sending");
    htmx.ajax("POST", root.dataset.moveUrl, {
      source: card,
      swap: "none",
      values: { record: card.dataset.record, stage: toStage, expected_stage: card.dataset.stage },
    });
  }

  function initLists(scope) {
    const root = board();
    if (!root || typeof Sortable === "undefined") return;
    (scope || document).querySelectorAll(".app-board-cards").forEach((list) => {
      if (list._sortable || !root.contains(list)) return;
      list._sortable = Sortable.create(list, {
        group: root.dataset.group,
        draggable: ".app-card-movable",
        filter: ".app-card-menu",
        preventOnFilter: false,
        animation: 150,
        // On touch screens a long press starts a drag; a swipe still scrolls.
        delay: 250,
        delayOnTouchOnly: true,
        ghostClass: "app-card-ghost",
        chosenClass: "app-card-chosen",
        onStart(evt) {
          remember(evt.item, evt.from, evt.from.children[evt.oldIndex + 1] || null);
        },
        onEnd(evt) {
          if (evt.from === evt.to) return;
          sendMove(evt.item, evt.to.dataset.stage);
        },
      });
    });
  }

  // A card's menu: move the card to the top of the chosen column, then post the move.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-move-to]");
    if (!button || !board()) return;
    event.preventDefault();
    const card = button.closest(".app-card");
    const list = document.getElementById("cards-" + button.dataset.moveTo);
    const toggle = card.querySelector("[data-bs-toggle=dropdown]");
    if (toggle && window.tabler && window.tabler.Dropdown) {
      const dropdown = window.tabler.Dropdown.getInstance(toggle);
      if (dropdown) dropdown.hide();
    }
    remember(card, card.parentNode, card.nextSibling);
    if (list) {
      list.prepend(card);
      card.scrollIntoView({ block: "nearest", inline: "center" });
    }
    sendMove(card, button.dataset.moveTo);
  });

  // Filters apply as soon as they change.
  document.addEventListener("change", (event) => {
    const form = event.target.closest(".app-board-filters");
    if (form) form.requestSubmit();
  });

  // "Load more" asks for the cards after those the column shows now.
  document.addEventListener("htmx:configRequest", (event) => {
    const elt = event.detail.elt;
    if (!elt || !elt.dataset || !elt.dataset.boardMore) return;
    const list = document.getElementById("cards-" + elt.dataset.boardMore);
    event.detail.parameters.offset = list ? list.querySelectorAll(".app-card").length : 0;
  });

  // Out-of-band answers: open or close the modal, let messages fade, set up new columns.
  let modalChanged = false;
  let modalHasForm = false;
  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    const target = event.detail.target;
    if (target && target.id === "board-modal-content") {
      modalChanged = true;
      modalHasForm = !!event.detail.fragment.querySelector("form");
    }
  });

  function afterResponse() {
    initLists(document);
    // A card loaded twice (a column's page after a move) is kept once.
    const seen = new Set();
    document.querySelectorAll("#board .app-card").forEach((card) => {
      if (seen.has(card.id)) card.remove();
      else seen.add(card.id);
    });
    document.querySelectorAll(".app-board-toast:not([data-fading])").forEach((alert) => {
      alert.dataset.fading = "1";
      fade(alert);
    });
    if (modalChanged && window.tabler && window.tabler.Modal) {
      const element = document.getElementById("board-modal");
      const modal = window.tabler.Modal.getOrCreateInstance(element);
      if (modalHasForm) {
        modal.show();
        const first = element.querySelector(".modal-body input:not([type=hidden]), .modal-body select, .modal-body textarea");
        if (first) window.setTimeout(() => first.focus(), 200);
      } else {
        modal.hide();
      }
    }
    modalChanged = false;
  }

  document.addEventListener("htmx:afterRequest", (event) => {
    const elt = event.detail.elt;
    if (elt && elt.classList) elt.classList.remove("app-card-sending");
    if (!board()) return;
    if (event.detail.failed && elt && elt.classList && elt.classList.contains("app-card")) {
      restore(elt);
      toast(board().dataset.errorText);
    }
    window.setTimeout(afterResponse, 0);
  });

  htmx.onLoad(initLists);
  document.addEventListener("DOMContentLoaded", () => initLists(document));
})();
