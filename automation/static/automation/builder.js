/* The automation rule builder: inputs for a rule's trigger settings, conditions and
   action settings in the admin, on top of their JSON textareas (data-builder="trigger",
   "conditions", "action"). The textarea stays what the form posts — the builder writes
   the same JSON into it on every change, and reads it back when the JSON is edited by
   hand — and the server checks it as before. Without this script, or for JSON it cannot
   show, the textarea is edited directly. What to offer (fields by record type, operators,
   people, stages...) and every label come from the page's json_script block
   #automation-builder-catalogue (automation/admin.py, builder_catalogue). */
(function () {
  "use strict";

  var CAT = null;

  function t(key) {
    return (CAT.labels && CAT.labels[key]) || key;
  }

  // --- Small DOM helpers ---------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else if (key in node && key !== "list") node[key] = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  function labelled(text, control, extraClass) {
    return el("label", { className: "rb-control" + (extraClass ? " " + extraClass : "") }, [
      el("span", { className: "rb-caption", text: text }),
      control,
    ]);
  }

  // A <select> of [value, label] pairs; values compare as strings. A current value
  // that is not offered (an item made inactive since) is shown as it is.
  function select(pairs, current, onchange, attrs) {
    var node = el("select", attrs || {});
    var known = pairs.some(function (pair) { return String(pair[0]) === String(current); });
    if (current !== undefined && current !== null && current !== "" && !known) {
      pairs = pairs.concat([[current, String(current)]]);
    }
    pairs.forEach(function (pair) {
      node.appendChild(el("option", { value: String(pair[0]), text: pair[1] }));
    });
    if (current !== undefined && current !== null) node.value = String(current);
    node.addEventListener("change", function () {
      onchange(node.value);
    });
    return node;
  }

  function input(type, current, onchange, attrs) {
    var node = el("input", Object.assign({ type: type }, attrs || {}));
    node.value = current === undefined || current === null ? "" : String(current);
    node.addEventListener("input", function () {
      onchange(node.value);
    });
    return node;
  }

  function checkbox(text, checked, onchange, param) {
    var box = el("input", { type: "checkbox", checked: !!checked, "data-param": param });
    box.addEventListener("change", function () {
      onchange(box.checked);
    });
    return el("label", { className: "rb-check" }, [box, document.createTextNode(" " + text)]);
  }

  function button(text, onclick, className) {
    return el("button", {
      type: "button",
      className: "rb-button" + (className ? " " + className : ""),
      text: text,
      onclick: function (event) {
        event.preventDefault();
        onclick();
      },
    });
  }

  function withBlank(pairs, blankLabel) {
    return [["", blankLabel || t("choose")]].concat(pairs);
  }

  function integer(text) {
    var n = parseInt(text, 10);
    return isNaN(n) ? text : n;
  }

  // --- The form around the builders ----------------------------------------------------

  function recordType() {
    var node = document.getElementById("id_record_type");
    return node ? node.value : "";
  }

  function fieldsOf(type) {
    return CAT.fields[type || recordType()] || [];
  }

  function fieldRef(name) {
    return fieldsOf().filter(function (ref) {
      return ref.name === name;
    })[0];
  }

  function fieldPairs(refs, current) {
    var pairs = refs.map(function (ref) {
      return [ref.name, ref.label];
    });
    if (current && !refs.some(function (ref) { return ref.name === current; })) {
      pairs.push([current, t("unknown_field").replace("%(field)s", current)]);
    }
    return withBlank(pairs);
  }

  function userPairs() {
    return CAT.users;
  }

  function optionsOf(ref) {
    if (!ref) return null;
    if (ref.kind === "user") return CAT.users_complete ? userPairs() : null;
    return ref.options;
  }

  var OP_LABELS = null;

  function opLabel(op) {
    if (!OP_LABELS) {
      OP_LABELS = {};
      CAT.operators.forEach(function (pair) {
        OP_LABELS[pair[0]] = pair[1];
      });
    }
    return OP_LABELS[op] || op;
  }

  // --- One value of a field ------------------------------------------------------------

  // The input for a value of `ref` compared by `op` (an equality when op is "eq"):
  // a select of its items or people, a number, a date, a multiple select for "is one
  // of"; none for "is empty". `set` receives the value as the JSON stores it.
  function valueEditor(ref, op, value, set, blankLabel) {
    if (!ref || CAT.no_value.indexOf(op) >= 0) return null;
    if (CAT.day_ops.indexOf(op) >= 0) {
      return input("number", value, function (v) { set(integer(v)); }, {
        min: 0, max: 36500, step: 1, className: "rb-val rb-number", "aria-label": t("days"),
      });
    }
    var options = optionsOf(ref);
    var isBool = ref.kind === "bool";
    var decode = function (v) {
      return isBool ? (v === "" ? "" : v === "true") : v;
    };
    if (CAT.list_ops.indexOf(op) >= 0) {
      var values = Array.isArray(value) ? value : value === undefined || value === "" ? [] : [value];
      if (options) {
        var multi = el("select", { multiple: true, size: Math.min(6, options.length), className: "rb-val", "aria-label": t("value") });
        options.forEach(function (pair) {
          multi.appendChild(el("option", {
            value: String(pair[0]),
            text: pair[1],
            selected: values.map(String).indexOf(String(pair[0])) >= 0,
          }));
        });
        multi.addEventListener("change", function () {
          set(Array.prototype.filter.call(multi.options, function (o) { return o.selected; })
            .map(function (o) { return decode(o.value); }));
        });
        return el("span", { className: "rb-value" }, [multi, el("small", { className: "rb-hint", text: t("multi_hint") })]);
      }
      return el("span", { className: "rb-value" }, [
        input("text", values.join(", "), function (v) {
          set(v.split(/[,，、;；\n]+/).map(function (s) { return s.trim(); }).filter(Boolean));
        }, { className: "rb-val", "aria-label": t("value") }),
        el("small", { className: "rb-hint", text: t("list_hint") }),
      ]);
    }
    if (options) {
      return select(withBlank(options, blankLabel), value, function (v) { set(decode(v)); }, { className: "rb-val", "aria-label": t("value") });
    }
    var type = { number: "number", date: "date", datetime: "datetime-local" }[ref.kind] || "text";
    var attrs = { "aria-label": t("value"), className: "rb-val" };
    if (type === "number") { attrs.step = "any"; attrs.className = "rb-val rb-number"; }
    if (ref.kind === "user") attrs.placeholder = "username";
    if (type === "datetime-local" && typeof value === "string") value = value.slice(0, 16);
    return input(type, value, set, attrs);
  }

  // --- Builders ------------------------------------------------------------------------

  // Wraps a textarea: the builder's inputs above it, the textarea under "Show JSON".
  function Shell(textarea, render) {
    var body = el("div", { className: "rb-body" });
    var details = el("details", { className: "rb-json" }, [el("summary", { text: t("show_json") })]);
    var note = el("p", { className: "rb-note", hidden: true, text: t("json_unreadable") });
    textarea.parentNode.insertBefore(el("div", { className: "rb-builder" }, [body, note, details]), textarea);
    var box = details.parentNode;
    details.appendChild(textarea);
    var shell = {
      textarea: textarea,
      read: function () {
        var text = textarea.value.trim();
        if (!text) return {};
        try {
          return JSON.parse(text);
        } catch (e) {
          return undefined;
        }
      },
      write: function (value) {
        textarea.value = JSON.stringify(value, null, 1);
      },
      refresh: function () {
        var value = shell.read();
        body.textContent = "";
        // render() says false when it cannot show the value, "json" when the JSON is
        // the editor (an action the builder has no inputs for).
        var shown = value === undefined ? false : render(shell, body, value);
        var ok = shown !== false;
        note.hidden = ok;
        body.hidden = !ok;
        if (!ok || shown === "json") details.open = true;
      },
    };
    box.builder = shell;
    textarea.addEventListener("input", shell.refresh);
    shell.refresh();
    return shell;
  }

  // Conditions: {"match": "all"|"any", "conditions": [leaf | group]}, groups one deep.
  function renderConditions(shell, body, value) {
    if (Array.isArray(value)) value = { match: "all", conditions: value };
    if (typeof value !== "object" || value === null) return false;
    var state = { match: value.match === "any" ? "any" : "all", conditions: (value.conditions || []).slice() };
    var ok = state.conditions.every(function (entry) {
      if (!entry || typeof entry !== "object") return false;
      if (!("conditions" in entry)) return true;
      return (entry.conditions || []).every(function (leaf) {
        return leaf && typeof leaf === "object" && !("conditions" in leaf);
      });
    });
    if (!ok) return false;

    function save() {
      shell.write(state);
    }
    function redraw() {
      save();
      shell.refresh();
    }

    function leafRow(leaf, list, index) {
      var ref = fieldRef(leaf.field);
      var ops = ref ? CAT.ops_by_kind[ref.kind] : [];
      var row = el("div", { className: "rb-row", "data-condition": "" });
      row.appendChild(select(fieldPairs(fieldsOf(), leaf.field), leaf.field || "", function (v) {
        list[index] = { field: v, op: "" };
        var next = fieldRef(v);
        if (next) list[index].op = CAT.ops_by_kind[next.kind][0];
        redraw();
      }, { className: "rb-field", "aria-label": t("field") }));
      if (ref) {
        row.appendChild(select(ops.map(function (op) { return [op, opLabel(op)]; }), leaf.op, function (v) {
          var wasList = CAT.list_ops.indexOf(leaf.op) >= 0;
          var isList = CAT.list_ops.indexOf(v) >= 0;
          leaf.op = v;
          if (CAT.no_value.indexOf(v) >= 0) delete leaf.value;
          else if (wasList !== isList || CAT.day_ops.indexOf(v) >= 0) leaf.value = isList ? [] : "";
          redraw();
        }, { className: "rb-op", "aria-label": t("operator") }));
        var editor = valueEditor(ref, leaf.op, leaf.value, function (v) {
          leaf.value = v;
          save();
        });
        if (editor) row.appendChild(editor);
      }
      row.appendChild(button("×", function () {
        list.splice(index, 1);
        redraw();
      }, "rb-remove"));
      row.lastChild.setAttribute("aria-label", t("remove"));
      row.lastChild.title = t("remove");
      return row;
    }

    var top = el("div", { className: "rb-conditions" });
    top.appendChild(el("div", { className: "rb-match" }, [
      select([["all", t("match_all")], ["any", t("match_any")]], state.match, function (v) {
        state.match = v;
        save();
      }, { className: "rb-match-select", "aria-label": t("match") }),
    ]));
    if (!state.conditions.length) top.appendChild(el("p", { className: "rb-empty", text: t("no_conditions") }));
    state.conditions.forEach(function (entry, index) {
      if (!("conditions" in entry)) {
        top.appendChild(leafRow(entry, state.conditions, index));
        return;
      }
      entry.conditions = (entry.conditions || []).slice();
      var group = el("div", { className: "rb-group", "data-group": "" }, [
        el("div", { className: "rb-group-head" }, [
          el("span", { className: "rb-caption", text: t("group") }),
          select([["all", t("group_all")], ["any", t("group_any")]], entry.match === "any" ? "any" : "all", function (v) {
            entry.match = v;
            save();
          }, { className: "rb-match-select", "aria-label": t("group") }),
          button(t("remove"), function () {
            state.conditions.splice(index, 1);
            redraw();
          }, "rb-link"),
        ]),
      ]);
      entry.conditions.forEach(function (leaf, i) {
        group.appendChild(leafRow(leaf, entry.conditions, i));
      });
      group.appendChild(el("div", { className: "rb-actions" }, [button("+ " + t("add_condition"), function () {
        entry.conditions.push({ field: "", op: "" });
        redraw();
      }, "rb-add-condition")]));
      top.appendChild(group);
    });
    top.appendChild(el("div", { className: "rb-actions" }, [
      button("+ " + t("add_condition"), function () {
        state.conditions.push({ field: "", op: "" });
        redraw();
      }, "rb-add-condition"),
      button("+ " + t("add_group"), function () {
        state.conditions.push({ match: "any", conditions: [{ field: "", op: "" }] });
        redraw();
      }, "rb-add-group"),
    ]));
    body.appendChild(top);
  }

  // Trigger settings (automation/rules.py, clean_trigger).
  function renderTrigger(shell, body, value) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
    var trigger = (document.getElementById("id_trigger") || {}).value || "";
    var params = value;
    function save() {
      shell.write(params);
    }
    function set(key, convert) {
      return function (v) {
        v = convert ? convert(v) : v;
        if (v === "" || v === null) delete params[key];
        else params[key] = v;
        save();
      };
    }
    var row = el("div", { className: "rb-row rb-form" });
    if (trigger === "field_changed") {
      var ref = fieldRef(params.field);
      row.appendChild(labelled(t("field"), select(fieldPairs(fieldsOf(), params.field), params.field || "", function (v) {
        params = v ? { field: v } : {};
        save();
        shell.refresh();
      }, { className: "rb-field", "data-param": "field" })));
      if (ref && ref.kind !== "tags") {
        var to = valueEditor(ref, "eq", params.to, set("to"), t("any_value"));
        if (to) row.appendChild(labelled(t("to_value"), to));
      }
    } else if (trigger === "time_in_stage") {
      row.appendChild(checkbox(t("use_time_limit"), params.use_time_limit, function (on) {
        params = on ? { use_time_limit: true } : {};
        save();
        shell.refresh();
      }, "use_time_limit"));
      if (!params.use_time_limit) {
        row.appendChild(labelled(t("time_in_stage"), el("span", { className: "rb-inline" }, [
          input("number", params.days, set("days", integer), { min: 0, max: 3650, className: "rb-number", "aria-label": t("days"), "data-param": "days" }),
          el("span", { text: t("days") }),
          input("number", params.hours, set("hours", integer), { min: 0, className: "rb-number", "aria-label": t("hours"), "data-param": "hours" }),
          el("span", { text: t("hours") }),
        ])));
      }
    } else if (trigger === "no_activity") {
      row.appendChild(labelled(t("no_activity_days"), input("number", params.days, set("days", integer), {
        min: 1, max: 3650, className: "rb-number", "data-param": "days",
      })));
    } else if (trigger === "anniversary") {
      var dates = fieldsOf().filter(function (r) { return r.kind === "date"; });
      var dateField = params.field || (dates.some(function (r) { return r.name === "birthday"; }) ? "birthday" : "");
      row.appendChild(labelled(t("date_field"), select(fieldPairs(dates, dateField), dateField, set("field"), { "data-param": "field" })));
      row.appendChild(labelled(t("at"), input("time", params.at || "09:00", set("at"), { "data-param": "at" })));
    } else if (trigger === "schedule") {
      row.appendChild(labelled(t("weekday"), select(
        [["", t("every_day")]].concat(t("weekdays").map(function (day, i) { return [i + 1, day]; })),
        params.weekday || "", set("weekday", integer), { "data-param": "weekday" })));
      row.appendChild(labelled(t("at"), input("time", params.at || "09:00", set("at"), { "data-param": "at" })));
    } else {
      row.appendChild(el("p", { className: "rb-empty", text: t("no_settings") }));
    }
    body.appendChild(row);
  }

  // Action settings (automation/actions.py, each action's clean).
  var ACTION_DEFAULTS = {
    create_task: function () {
      return { title: "", notes: "", assignee: { type: "owner" }, due: { amount: 1, unit: "days" }, working_hours: true, complete_on_leave: false };
    },
    assign_owner: function () { return { to: "user" }; },
    set_field: function () { return { field: "" }; },
    move_stage: function () { return {}; },
    add_tag: function () { return { tag: "" }; },
    release: function () { return { reason: "" }; },
    send_email: function () { return { template: "", to: "contact" }; },
    notify: function () { return { title: "", body: "", to: { type: "owner" } }; },
    delay: function () { return { amount: 1, unit: "days" }; },
  };

  function peopleEditor(caption, key, target, setTarget) {
    if (typeof target === "string") target = { type: target };
    target = target || { type: "owner" };
    var wrap = el("span", { className: "rb-inline" });
    wrap.appendChild(select(
      [["owner", t("owner")], ["manager", t("manager")], ["user", t("user")], ["role", t("role")]],
      target.type, function (v) {
        setTarget({ type: v }, true);
      }, { "aria-label": caption, "data-param": key }));
    if (target.type === "user") {
      wrap.appendChild(CAT.users_complete
        ? select(withBlank(userPairs()), target.user || "", function (v) { setTarget({ type: "user", user: v }); }, { "aria-label": t("person"), "data-param": key + ".user" })
        : input("text", target.user, function (v) { setTarget({ type: "user", user: v }); }, { "aria-label": t("person"), placeholder: "username", "data-param": key + ".user" }));
    } else if (target.type === "role") {
      wrap.appendChild(select(withBlank(CAT.roles.map(function (r) { return [r, r]; })), target.role || "", function (v) {
        setTarget({ type: "role", role: v });
      }, { "aria-label": t("role_name"), "data-param": key + ".role" }));
    }
    return labelled(caption, wrap);
  }

  // {"amount": N, "unit": ...}: a number and a unit.
  function durationEditor(caption, key, due, units, setDue) {
    var current = {
      amount: due && due.amount !== undefined ? due.amount : 0,
      unit: (due && due.unit) || "days",
    };
    return labelled(caption, el("span", { className: "rb-inline" }, [
      input("number", current.amount, function (v) {
        current.amount = integer(v);
        setDue({ amount: current.amount, unit: current.unit });
      }, { min: 0, max: 3650, className: "rb-number", "aria-label": caption, "data-param": key + "amount" }),
      select(units.map(function (u) { return [u, t(u)]; }), current.unit, function (v) {
        current.unit = v;
        setDue({ amount: current.amount, unit: current.unit });
      }, { "aria-label": caption, "data-param": key + "unit" }),
    ]));
  }

  function renderAction(shell, body, value, kind) {
    if (!ACTION_DEFAULTS[kind]) {
      body.appendChild(el("p", { className: "rb-empty", text: t("other_action") }));
      return "json";
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
    var untouched = !Object.keys(value).length;
    var params = untouched ? ACTION_DEFAULTS[kind]() : value;
    var type = recordType();
    function save() {
      shell.write(params);
    }
    function text(key, caption, multiline) {
      var node = multiline
        ? el("textarea", { rows: 2, className: "rb-text" })
        : el("input", { type: "text", className: "rb-text" });
      node.setAttribute("data-param", key);
      node.value = params[key] || "";
      node.addEventListener("input", function () {
        params[key] = node.value;
        save();
      });
      return labelled(caption, node, "rb-wide");
    }
    function redrawWith(update) {
      update();
      save();
      shell.refresh();
    }
    var form = el("div", { className: "rb-form" });
    var add = function (node) { form.appendChild(node); };
    if (kind === "create_task" || kind === "notify") {
      add(text("title", t("title")));
      add(text(kind === "notify" ? "body" : "notes", t(kind === "notify" ? "body" : "notes"), true));
      var who = kind === "notify" ? "to" : "assignee";
      add(peopleEditor(t(kind === "notify" ? "recipients" : "assignee"), who, params[who], function (target, redraw) {
        params[who] = target;
        if (redraw) redrawWith(function () {});
        else save();
      }));
      if (kind === "create_task") {
        add(durationEditor(t("due_in"), "due.", params.due, ["hours", "days"], function (due) {
          params.due = due;
          save();
        }));
        add(checkbox(t("working_hours"), params.working_hours, function (on) {
          params.working_hours = on;
          save();
        }, "working_hours"));
        if (type === "lead" || type === "deal" || params.complete_on_leave) {
          add(checkbox(t("complete_on_leave"), params.complete_on_leave, function (on) {
            params.complete_on_leave = on;
            save();
          }, "complete_on_leave"));
        }
      }
      add(el("small", { className: "rb-hint", text: t("placeholders") }));
    } else if (kind === "delay") {
      add(durationEditor(t("wait"), "", params, ["minutes", "hours", "days"], function (due) {
        params = due;
        save();
      }));
    } else if (kind === "assign_owner") {
      var how = params.to || "user";
      add(labelled(t("assign_to"), select([["user", t("user")], ["round_robin", t("round_robin")], ["fewest", t("fewest")]], how, function (v) {
        redrawWith(function () { params = { to: v }; });
      }, { "data-param": "to" })));
      if (how === "user") {
        add(labelled(t("person"), CAT.users_complete
          ? select(withBlank(userPairs()), params.user || "", function (v) { params.user = v; save(); }, { "data-param": "user" })
          : input("text", params.user, function (v) { params.user = v; save(); }, { "data-param": "user" })));
      } else {
        add(labelled(t("department"), select(withBlank(CAT.departments.map(function (d) { return [d, d]; })), params.department || "", function (v) {
          params.department = v;
          save();
        }, { "data-param": "department" })));
      }
    } else if (kind === "set_field") {
      var settable = fieldsOf().filter(function (r) { return r.settable; });
      var ref = fieldRef(params.field);
      add(labelled(t("field"), select(fieldPairs(settable, params.field), params.field || "", function (v) {
        redrawWith(function () { params = { field: v }; });
      }, { className: "rb-field", "data-param": "field" })));
      if (ref) {
        add(labelled(t("new_value"), valueEditor(ref, "eq", params.value, function (v) {
          params.value = v === "" ? null : v;
          save();
        }, t("clear_value"))));
      }
    } else if (kind === "move_stage") {
      add(labelled(t("stage"), select(withBlank(CAT.stages[type] || []), params.stage || "", function (v) {
        params = v ? { stage: integer(v) } : {};
        save();
      }, { "data-param": "stage" })));
    } else if (kind === "add_tag") {
      add(text("tag", t("tag")));
    } else if (kind === "release") {
      add(text("reason", t("reason")));
    } else if (kind === "send_email") {
      add(labelled(t("template"), select(withBlank(CAT.email_templates.map(function (n) { return [n, n]; })), params.template || "", function (v) {
        params.template = v;
        save();
      }, { "data-param": "template" })));
      add(labelled(t("recipients"), select([["contact", t("to_contact")], ["owner", t("to_owner")]], params.to || "contact", function (v) {
        params.to = v;
        save();
      }, { "data-param": "to" })));
    }
    body.appendChild(form);
  }

  // --- Wiring --------------------------------------------------------------------------

  function kindSelect(textarea) {
    // The action's kind select: the same inline form's "-kind" input.
    var id = textarea.id.replace(/-params$/, "-kind");
    return document.getElementById(id);
  }

  function enhance(textarea) {
    if (textarea.dataset.builderReady || /__prefix__/.test(textarea.name)) return;
    textarea.dataset.builderReady = "1";
    var which = textarea.dataset.builder;
    if (which === "conditions") {
      Shell(textarea, renderConditions);
    } else if (which === "trigger") {
      var shell = Shell(textarea, renderTrigger);
      var trigger = document.getElementById("id_trigger");
      if (trigger) trigger.addEventListener("change", function () {
        shell.write({});
        shell.refresh();
      });
    } else if (which === "action") {
      var kind = kindSelect(textarea);
      var actionShell = Shell(textarea, function (shell, body, value) {
        return renderAction(shell, body, value, kind ? kind.value : "");
      });
      if (kind) kind.addEventListener("change", function () {
        var defaults = ACTION_DEFAULTS[kind.value];
        if (defaults) actionShell.write(defaults());
        actionShell.refresh();
      });
    }
  }

  function enhanceAll(root) {
    Array.prototype.forEach.call(root.querySelectorAll("textarea[data-builder]"), enhance);
  }

  function refreshAll() {
    Array.prototype.forEach.call(document.querySelectorAll(".rb-builder"), function (box) {
      if (box.builder) box.builder.refresh();
    });
  }

  function start() {
    var data = document.getElementById("automation-builder-catalogue");
    if (!data) return;
    CAT = JSON.parse(data.textContent);
    enhanceAll(document);
    var type = document.getElementById("id_record_type");
    if (type) type.addEventListener("change", refreshAll);
    document.addEventListener("formset:added", function (event) {
      enhanceAll(event.target);
    });
    document.documentElement.classList.add("rb-ready");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
