// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // A page kept in the browser's memory would show a form the server may no longer take
  // (a closed step): a page restored by Back is fetched again.
  window.addEventListener("pageshow", function (event) { if (event.persisted) { window.location.reload(); } });
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
  document.querySelectorAll(".q-multiple").forEach(function (group) {
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

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) { return values[name]; });
  }

  // Ranking: the list itself is reordered (buttons, or dragging a row by its handle) and the
  // hidden selects follow its order, so no rank is ever taken from another row unseen.
  function rankingList(list) {
    var d = list.dataset;
    var rows = Array.prototype.slice.call(list.querySelectorAll(".rank-row"));
    if (!rows.length) { return; }
    var fieldset = list.closest("fieldset");
    var hint = fieldset.querySelector(".rank-hint");
    var live = document.createElement("p");
    live.className = "vh";
    live.setAttribute("aria-live", "polite");
    var status = document.createElement("p");
    status.className = "rank-status";
    var tools = document.createElement("div");
    tools.className = "rank-tools";
    var keep = document.createElement("button");
    keep.type = "button"; keep.className = "secondary"; keep.textContent = d.keep;
    var clear = document.createElement("button");
    clear.type = "button"; clear.className = "link"; clear.textContent = d.clear;
    tools.appendChild(keep); tools.appendChild(clear);
    list.parentNode.insertBefore(status, list);
    list.parentNode.insertBefore(tools, list.nextSibling);
    list.parentNode.insertBefore(live, tools.nextSibling);
    if (hint && d.help) { hint.textContent = d.help; }
    list.classList.add("reorderable");

    function select(row) { return row.querySelector("select"); }
    function name(row) { return row.querySelector("label, .rank-name").textContent.trim(); }
    var values = rows.map(function (row) { return parseInt(select(row).value, 10); });
    var ranked = values.every(function (v) { return v > 0; }) &&
      new Set(values).size === values.length;
    if (values.some(function (v) { return v > 0; })) {
      // Rows with a rank first, in its order; the rest after, as they were.
      rows.sort(function (a, b) {
        var x = parseInt(select(a).value, 10) || 1e9, y = parseInt(select(b).value, 10) || 1e9;
        return x - y;
      });
    }

    function current() { return Array.prototype.slice.call(list.querySelectorAll(".rank-row")); }
    function update() {
      var now = current();
      now.forEach(function (row, index) {
        row.querySelector(".rank-number").textContent = ranked ? String(index + 1) : "–";
        select(row).value = ranked ? String(index + 1) : "";
        row.querySelector(".up").disabled = index === 0;
        row.querySelector(".down").disabled = index === now.length - 1;
      });
      status.textContent = ranked ? d.ranked : d.unranked;
      keep.hidden = ranked;
      clear.hidden = !ranked;
    }
    function moved(row, focusClass) {
      ranked = true;
      update();
      var now = current();
      live.textContent = fill(d.moved, { option: name(row), rank: now.indexOf(row) + 1, count: now.length });
      var button = row.querySelector(focusClass);
      if (button && button.disabled) { button = row.querySelector(focusClass === ".up" ? ".down" : ".up"); }
      if (button) { button.focus(); }
    }

    rows.forEach(function (row) {
      list.appendChild(row);
      var label = row.querySelector("label");
      var nameBox = document.createElement("span");
      nameBox.className = "rank-name";
      nameBox.textContent = label.textContent;
      label.parentNode.replaceChild(nameBox, label);
      select(row).hidden = true;
      select(row).tabIndex = -1;
      var number = document.createElement("span");
      number.className = "rank-number";
      number.setAttribute("aria-hidden", "true");
      var handle = document.createElement("span");
      handle.className = "rank-handle";
      handle.setAttribute("aria-hidden", "true");
      handle.textContent = "⠿";
      var buttons = document.createElement("span");
      buttons.className = "rank-buttons";
      [["up", d.up, "↑"], ["down", d.down, "↓"]].forEach(function (spec) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "rank-move " + spec[0];
        button.setAttribute("aria-label", spec[1] + ": " + nameBox.textContent);
        button.textContent = spec[2];
        button.addEventListener("click", function () {
          var sibling = spec[0] === "up" ? row.previousElementSibling : row.nextElementSibling;
          if (!sibling) { return; }
          list.insertBefore(row, spec[0] === "up" ? sibling : sibling.nextElementSibling);
          moved(row, "." + spec[0]);
        });
        buttons.appendChild(button);
      });
      row.insertBefore(number, row.firstChild);
      row.insertBefore(handle, row.firstChild);
      row.appendChild(buttons);
      // Dragging with a pointer (mouse, pen or finger) by the handle.
      handle.addEventListener("pointerdown", function (event) {
        event.preventDefault();
        row.classList.add("dragging");
        // Listened to on the document: moving the row in the page releases pointer capture.
        function move(e) {
          var others = current().filter(function (r) { return r !== row; });
          var before = null;
          for (var i = 0; i < others.length; i++) {
            var box = others[i].getBoundingClientRect();
            if (e.clientY < box.top + box.height / 2) { before = others[i]; break; }
          }
          if (row.nextElementSibling !== before) { list.insertBefore(row, before); }
        }
        function end() {
          document.removeEventListener("pointermove", move);
          document.removeEventListener("pointerup", end);
          document.removeEventListener("pointercancel", end);
          row.classList.remove("dragging");
          moved(row, ".up");
        }
        document.addEventListener("pointermove", move);
        document.addEventListener("pointerup", end);
        document.addEventListener("pointercancel", end);
      });
    });
    keep.addEventListener("click", function () {
      ranked = true; update(); live.textContent = d.ranked; clear.focus();
    });
    clear.addEventListener("click", function () {
      ranked = false; update(); live.textContent = d.cleared; keep.focus();
    });
    update();
  }
  document.querySelectorAll("ol.ranking").forEach(rankingList);

  // Reporting a reason sends the report alone and says so in place: the reasons being typed
  // stay in the page (without this script the button sends them along and they come back).
  var reportStatus = document.getElementById("report-status");
  document.querySelectorAll("button.report").forEach(function (button) {
    button.addEventListener("click", function (event) {
      var form = document.getElementById(button.getAttribute("form"));
      if (!form || !window.fetch) { return; }
      event.preventDefault();
      var body = new FormData();
      body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      button.disabled = true;
      fetch(button.getAttribute("formaction").split("#")[0], {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      }).then(function (data) {
        // Nothing recorded (the reason was hidden meanwhile, or the step closed): no thanks;
        // the ordinary submission below brings the page back as it now is.
        if (!data.reported) { throw new Error("not reported"); }
        var note = document.createElement("span");
        note.className = "reported";
        note.textContent = button.dataset.reported;
        // The button had focus: hand it to the note that replaces it, or a keyboard user is
        // sent back to the top of the page.
        note.tabIndex = -1;
        button.parentNode.replaceChild(note, button);
        note.focus();
        if (reportStatus) { reportStatus.textContent = data.message; }
      }).catch(function () {
        // The ordinary submission still works, and carries what is typed.
        button.disabled = false;
        form.requestSubmit ? form.requestSubmit(button) : form.submit();
      });
    });
  });
})();
