// The pipeline board: drag a card to another column (SortableJS), or use a card's
// "Move to…" menu (phones); either posts the move with htmx. The server answers with
// out-of-band swaps: the card and the columns' totals, a small form in the modal, or a
// message and the columns as they are in the database. A move's message offers to undo
// it for a few seconds (longer while the pointer or focus is on it).
//
// While a card is dragged near the board's left or right edge the board scrolls that
// way, faster nearer the edge, so a column out of sight can be reached (SortableJS
// scrolls the page up and down).
(function () {
  "use strict";

  // Auto-scroll: within EDGE px of the board's visible edge, up to MAX_STEP px a frame.
  const EDGE = 72;
  const MAX_STEP = 22;
  const SLACK = 16; // px the card must be carried towards an edge first
  let drag = null; // { x, y, startX, frame } while a card is dragged

  function pointerAt(event) {
    if (!drag) return;
    const point = event.touches && event.touches.length ? event.touches[0] : event;
    if (point && typeof point.clientX === "number" && (point.clientX || point.clientY)) {
      drag.x = point.clientX;
      drag.y = point.clientY;
      if (drag.startX === null) drag.startX = drag.x;
    }
  }

  const POINTER_EVENTS = ["dragover", "pointermove", "mousemove", "touchmove"];

  function scrollStep() {
    if (!drag) return;
    const root = board();
    if (root && drag.x !== null) {
      const rect = root.getBoundingClientRect();
      const left = Math.max(rect.left, 0);
      const right = Math.min(rect.right, document.documentElement.clientWidth);
      let speed = 0;
      // Only towards where the card was taken: a card picked up near an edge does not
      // set the board moving before it is carried that way.
      if (drag.y >= rect.top - EDGE) {
        if (drag.x > right - EDGE && drag.x > drag.startX + SLACK) {
          speed = Math.min(1, (drag.x - (right - EDGE)) / EDGE);
        } else if (drag.x < left + EDGE && drag.x < drag.startX - SLACK) {
          speed = -Math.min(1, (left + EDGE - drag.x) / EDGE);
        }
      }
      if (speed) {
        const step = Math.round(speed * MAX_STEP) || Math.sign(speed);
        root.scrollLeft += step;
      }
    }
    drag.frame = window.requestAnimationFrame(scrollStep);
  }

  function startAutoScroll(event) {
    stopAutoScroll();
    const root = board();
    if (!root) return;
    root.classList.add("app-board-dragging");
    drag = { x: null, y: null, startX: null, frame: 0 };
    POINTER_EVENTS.forEach((type) =>
      document.addEventListener(type, pointerAt, { capture: true, passive: true })
    );
    if (event) pointerAt(event);
    drag.frame = window.requestAnimationFrame(scrollStep);
  }

  function stopAutoScroll() {
    if (drag) window.cancelAnimationFrame(drag.frame);
    drag = null;
    POINTER_EVENTS.forEach((type) =>
      document.removeEventListener(type, pointerAt, { capture: true })
    );
    const root = board();
    if (root) root.classList.remove("app-board-dragging");
  }

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

  // A message goes after a few seconds; one that offers to undo stays while the pointer
  // or the keyboard focus is on it.
  function fade(alert) {
    const root = board();
    const seconds = alert.classList.contains("app-board-toast-undo")
      ? Number((root && root.dataset.undoSeconds) || 10)
      : 8;
    const later = () => {
      if (!alert.isConnected) return;
      if (alert.matches(":hover") || alert.contains(document.activeElement)) {
        window.setTimeout(later, 1000);
        return;
      }
      alert.remove();
    };
    window.setTimeout(later, seconds * 1000);
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
        // SortableJS scrolls the page up and down; the board's sideways scroll is ours.
        scroll: true,
        scrollSensitivity: 80,
        scrollSpeed: 14,
        bubbleScroll: true,
        onStart(evt) {
          remember(evt.item, evt.from, evt.from.children[evt.oldIndex + 1] || null);
          startAutoScroll(evt.originalEvent);
        },
        onEnd(evt) {
          stopAutoScroll();
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

  // The compact layout: narrower columns and cards; kept in a cookie, so the page is
  // rendered in it next time.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-board-compact]");
    const root = board();
    if (!button || !root) return;
    const compact = !root.classList.contains("app-board-compact");
    root.classList.toggle("app-board-compact", compact);
    button.classList.toggle("active", compact);
    button.setAttribute("aria-pressed", compact ? "true" : "false");
    const age = compact ? 60 * 60 * 24 * 365 : 0;
    document.cookie = button.dataset.cookie + "=" + (compact ? "1" : "") +
      "; path=/; max-age=" + age + "; SameSite=Lax";
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

  // An undo is sent once: its message hides as the request leaves, and goes once the
  // answer (the card back, or why not) has come.
  function undoAlert(elt) {
    return elt && elt.matches && elt.matches("[data-undo-form]") ? elt.closest(".app-board-toast") : null;
  }

  document.addEventListener("htmx:beforeRequest", (event) => {
    const alert = undoAlert(event.detail.elt);
    if (alert) alert.hidden = true;
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const elt = event.detail.elt;
    const alert = undoAlert(elt);
    if (alert) {
      window.setTimeout(() => alert.remove(), 0);
      if (event.detail.failed && board()) toast(board().dataset.errorText);
    }
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
