// The poll page's authoring aids. Everything here only helps: without script the page still
// works (every kind's fields are shown under headings naming their kinds, blank keys are made
// by the server, and spare empty rows take new choices and sources).
(() => {
  "use strict";
  const MAX_KEY = 30;

  // -- keys proposed from the text ---------------------------------------------------------------
  function keyFrom(text, fallback) {
    const words = text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, " ").trim().split(/\s+/).filter(Boolean);
    let key = "";
    for (const word of words) {
      if (key.length + word.length + 1 > MAX_KEY) break;
      key = key ? `${key}_${word}` : word;
    }
    if (!key && words.length) key = words[0].slice(0, MAX_KEY);
    if (!/^[a-z]/.test(key)) key = key ? `${fallback}_${key}` : "";
    return key;
  }

  function unique(key, taken) {
    const used = new Set([...taken].map((k) => k.toLowerCase()));
    let candidate = key;
    for (let n = 2; used.has(candidate.toLowerCase()); n += 1) candidate = `${key}_${n}`;
    return candidate;
  }

  function liveRows(group) {
    return [...group.querySelectorAll(".inline-related")].filter(
      (row) => !row.classList.contains("empty-form") && !row.id.endsWith("-empty"),
    );
  }

  function keyInput(row) {
    return row.querySelector('input[name$="-key"]:not(.choice-key)');
  }

  function keysOf(group, except) {
    return liveRows(group).map(keyInput).filter((input) => input && input !== except)
      .map((input) => input.value.trim()).filter(Boolean);
  }

  function sourceInput(row) {
    return row.querySelector('input[name$="-text_en"], textarea[name$="-text_en"], input[name$="-title_en"]');
  }

  function proposeRowKey(group, row) {
    const key = keyInput(row);
    const source = sourceInput(row);
    // A position's key is a letter, given when the row is added; not made from its title.
    if (!key || !source || key.dataset.auto !== "yes" || group.id === "positions-group") return;
    const fallback = group.id.replace(/s-group$/, "");
    const proposal = keyFrom(source.value, fallback);
    key.value = proposal ? unique(proposal, keysOf(group, key)) : "";
    refreshSiblings();
  }

  function nextLetter(taken) {
    const used = new Set(taken.map((k) => k.toUpperCase()));
    for (let code = 65; code <= 90; code += 1) {
      if (!used.has(String.fromCharCode(code))) return String.fromCharCode(code);
    }
    return "";
  }

  function prepareRow(group, row) {
    const key = keyInput(row);
    if (key && !key.value.trim()) {
      key.dataset.auto = "yes";
      if (group.id === "positions-group") key.value = nextLetter(keysOf(group, key));
    }
    const order = row.querySelector('input[name$="-order"]');
    if (order && !row.classList.contains("has_original") && (order.value === "" || order.value === "0")) {
      const orders = liveRows(group).map((r) => Number(r.querySelector('input[name$="-order"]')?.value || 0));
      order.value = String(Math.max(0, ...orders) + 1);
    }
    showKindFields(row);
    prepareEditors(row);
  }

  // -- a question shows the fields of its kind ---------------------------------------------------
  function showKindFields(row) {
    // Editable: the kind chosen; read-only (a poll with answers): the kind the row was drawn with.
    const select = row.querySelector('select[name$="-kind"]');
    const kind = select ? select.value : row.dataset.kind;
    if (!kind) return;
    for (const fieldset of row.querySelectorAll("fieldset.kind-fields")) {
      fieldset.hidden = !fieldset.classList.contains(`kind-${kind}`);
    }
    for (const cell of row.querySelectorAll(".correct-col")) cell.hidden = kind !== "knowledge";
    const breakdown = row.querySelector(".field-breakdown");
    if (breakdown) breakdown.hidden = kind !== "single";
  }

  // -- rows editors (choices, sources) --------------------------------------------------------------
  function prepareEditors(scope) {
    for (const editor of scope.querySelectorAll(".rows-editor")) {
      if (editor.dataset.ready === "yes" || editor.closest(".empty-form")) continue;
      editor.dataset.ready = "yes";
      for (const button of editor.querySelectorAll(".add-row, .remove-row")) button.hidden = false;
    }
  }

  function addEditorRow(editor) {
    const count = editor.querySelector(".rows-count");
    const template = editor.querySelector("template.row-template");
    const index = Number(count.value);
    // A question added on this page: its template still says __prefix__ where the row's
    // inputs now carry the question's number.
    const base = count.name.replace(/-rows$/, "");
    const html = template.innerHTML.replaceAll(editor.dataset.name, base)
      .replaceAll("__row__", String(index));
    const holder = editor.querySelector("tbody, ol.rows");
    holder.insertAdjacentHTML("beforeend", html);
    count.value = String(index + 1);
    const added = holder.lastElementChild;
    for (const button of added.querySelectorAll(".remove-row")) button.hidden = false;
    const row = editor.closest(".inline-related");
    if (row) showKindFields(row);
    applyLanguages(added);
    added.querySelector("input:not([type=hidden])")?.focus();
  }

  function removeEditorRow(row) {
    // A row left empty is dropped when the poll is saved.
    for (const input of row.querySelectorAll("input")) {
      if (input.type === "radio") input.checked = false;
      else input.value = "";
    }
    row.hidden = true;
  }

  // -- links to other parts of the poll, including parts added in this save ------------------------
  function refreshSiblings() {
    for (const select of document.querySelectorAll("select[data-sibling]")) {
      if (select.closest(".empty-form")) continue;
      const group = document.getElementById(`${select.dataset.sibling}-group`);
      if (!group) continue;
      const present = new Set([...select.options].map((option) => option.value));
      for (const row of liveRows(group)) {
        const key = keyInput(row)?.value.trim();
        if (!key || present.has(key)) continue;
        const text = sourceInput(row)?.value.trim() || "";
        select.add(new Option(text ? `${key}: ${text.slice(0, 60)}` : key, key));
        present.add(key);
      }
    }
  }

  // -- the poll's languages ----------------------------------------------------------------------
  function chosenLanguages() {
    const boxes = [...document.querySelectorAll('input[name="languages"]')];
    if (!boxes.length) return null;
    return new Set(boxes.filter((box) => box.checked).map((box) => box.value).concat(["en"]));
  }

  function applyLanguages(scope) {
    const chosen = chosenLanguages();
    if (!chosen) return;
    for (const item of scope.querySelectorAll(".translation[data-language]")) {
      item.hidden = !chosen.has(item.dataset.language);
    }
  }

  // -- a link to a part of the page opens the sections around it -----------------------------------
  function openTarget() {
    if (!location.hash) return;
    const name = CSS.escape(location.hash.slice(1));
    // The readiness check's links name a list (#questions-group) or a fieldset (#design).
    const target = document.getElementById(location.hash.slice(1)) || document.querySelector(`fieldset.${name}`);
    if (!target) return;
    for (let node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    target.querySelector("details")?.setAttribute("open", "");
    target.scrollIntoView();
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const group of document.querySelectorAll(".outline-group")) {
      for (const row of liveRows(group)) prepareRow(group, row);
    }
    prepareEditors(document);
    refreshSiblings();
    applyLanguages(document);
    openTarget();
  });
  window.addEventListener("hashchange", openTarget);

  document.addEventListener("formset:added", (event) => {
    const row = event.target;
    const group = row.closest(".outline-group");
    if (group) prepareRow(group, row);
    refreshSiblings();
  });

  document.addEventListener("input", (event) => {
    const input = event.target;
    const row = input.closest(".inline-related");
    const group = input.closest(".outline-group");
    if (input.matches('input[name$="-key"]:not(.choice-key)')) {
      input.dataset.auto = input.value.trim() ? "no" : "yes";
    } else if (input.classList.contains("choice-key")) {
      input.dataset.auto = input.value.trim() ? "no" : "yes";
    } else if (input.classList.contains("key-source")) {
      const key = input.closest(".editor-row")?.querySelector(".choice-key");
      if (key && (key.dataset.auto === "yes" || !key.value.trim())) {
        key.dataset.auto = "yes";
        const taken = [...input.closest(".rows-editor").querySelectorAll(".choice-key")]
          .filter((other) => other !== key).map((other) => other.value.trim());
        const proposal = keyFrom(input.value, "c");
        key.value = proposal ? unique(proposal, taken) : "";
      }
    } else if (row && group && input === sourceInput(row)) {
      proposeRowKey(group, row);
    }
  });

  document.addEventListener("change", (event) => {
    const input = event.target;
    if (input.matches('select[name$="-kind"]')) showKindFields(input.closest(".inline-related"));
    if (input.matches('input[name="languages"]')) applyLanguages(document);
    if (input.matches('input[name$="-key"]')) refreshSiblings();
  });

  document.addEventListener("focusin", (event) => {
    if (event.target.matches("select[data-sibling]")) refreshSiblings();
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".add-row, .remove-row");
    if (!button) return;
    event.preventDefault();
    if (button.classList.contains("add-row")) addEditorRow(button.closest(".rows-editor"));
    else removeEditorRow(button.closest(".editor-row"));
  });
})();
