// The live room: a WebSocket to the room, with polling over HTTP when it cannot be had.
// Every message carries a client id and is sent again until the server acknowledges it (the
// server stores it once, whatever the number of tries); a reconnect or a reload asks for
// everything after the last seq shown, so nothing is missed and nothing shows twice.
(function () {
  "use strict";
  var configNode = document.getElementById("room-config");
  if (!configNode) { return; }
  var config = JSON.parse(configNode.textContent);
  var texts = document.getElementById("room-texts").dataset;
  var list = document.getElementById("messages");
  var announce = document.getElementById("announce");
  var connection = document.getElementById("connection");
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var storeKey = "live-outbox:" + config.socket + ":" + config.me;
  var lastSeq = 0;
  var socket = null;
  var polling = null;
  var retryDelay = 1000;
  var clockOffset = 0;
  var deadline = null;
  var lastState = null;
  var hidden = {};

  list.querySelectorAll("li[data-seq]").forEach(function (li) {
    lastSeq = Math.max(lastSeq, parseInt(li.dataset.seq, 10));
  });

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) { return values[name]; });
  }
  function say(text) {
    // Cleared first, so the same words said twice are read twice.
    announce.textContent = "";
    window.setTimeout(function () { announce.textContent = text; }, 50);
  }
  function uuid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  // -- the outbox: messages not yet acknowledged, kept across reloads ------------------------
  function loadOutbox() {
    try { return JSON.parse(window.localStorage.getItem(storeKey) || "[]"); } catch (e) { return []; }
  }
  var outbox = loadOutbox();
  function saveOutbox() {
    try { window.localStorage.setItem(storeKey, JSON.stringify(outbox)); } catch (e) { /* private mode */ }
  }
  function acknowledged(clientId) {
    var before = outbox.length;
    outbox = outbox.filter(function (item) { return item.client_id !== clientId; });
    if (outbox.length !== before) { saveOutbox(); }
    var pending = document.getElementById("pending-" + clientId);
    if (pending) { pending.remove(); }
  }
  function queue(payload) {
    if (payload.client_id) { outbox.push(payload); saveOutbox(); }
    transmit(payload);
  }
  function flush() { outbox.forEach(transmit); }

  // -- transport --------------------------------------------------------------------------
  function transmit(payload) {
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify(payload));
      return;
    }
    if (!polling) { return; }  // sent on (re)connection from the outbox
    fetch(config.send, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
      body: JSON.stringify(payload)
    }).then(function (r) { return r.json(); }).then(function (data) { (data.events || []).forEach(handle); poll(); })
      .catch(function () { showConnection("offline"); });
  }
  function showConnection(kind) {
    // Also on the room's element, for tests and styles: online (socket), polling or offline.
    document.getElementById("room").dataset.connection = kind;
    connection.hidden = kind === "online";
    connection.textContent = connection.dataset[kind] || "";
    connection.className = "connection " + kind;
  }
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var opened = false;
    var ws;
    try { ws = new WebSocket(scheme + window.location.host + config.socket); } catch (e) { startPolling(); return; }
    socket = ws;
    var giveUp = window.setTimeout(function () { if (!opened) { ws.close(); } }, 5000);
    ws.onopen = function () {
      opened = true;
      window.clearTimeout(giveUp);
      retryDelay = 1000;
      stopPolling();
      showConnection("online");
      ws.send(JSON.stringify({type: "join", since: lastSeq}));
      flush();
    };
    ws.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      (data.events || [data]).forEach(handle);
    };
    ws.onclose = function () {
      window.clearTimeout(giveUp);
      if (socket === ws) { socket = null; }
      // Polling carries the room until the socket is back.
      startPolling();
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    };
  }
  function startPolling() {
    if (polling) { return; }
    showConnection("polling");
    polling = window.setInterval(poll, 2000);
    poll();
    flush();
  }
  function stopPolling() {
    if (polling) { window.clearInterval(polling); polling = null; }
  }
  var inFlight = false;
  function poll() {
    if (inFlight) { return; }
    inFlight = true;
    fetch(config.events + "?since=" + lastSeq, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.status === 410) { window.location.assign(config.page); return {events: []}; }
        return r.json();
      })
      .then(function (data) { if (polling) { showConnection("polling"); } (data.events || []).forEach(handle); })
      .catch(function () { showConnection("offline"); })
      .then(function () { inFlight = false; });
  }

  // -- events -----------------------------------------------------------------------------
  function handle(event) {
    if (event.type === "message" || event.type === "nudge") { message(event); }
    else if (event.type === "state") { state(event); }
    else if (event.type === "ack") { acknowledged(event.client_id); }
    else if (event.type === "hidden") { hide(event.seq); }
    else if (event.type === "shown") { show(event); }
    else if (event.type === "turn") { turnChanged(event.member); }
    else if (event.type === "removed" && event.member_id === config.me_id) { window.location.assign(config.page); }
    else if (event.type === "error") { error(event); }
  }
  function messageNode(m) {
    var li = document.createElement("li");
    li.id = "m-" + m.seq;
    li.dataset.seq = m.seq;
    li.className = "message" + (m.kind !== "chat" ? " kind-" + m.kind : "") + (m.mine ? " mine" : "") + (m.in_turn ? " in-turn" : "");
    var author = document.createElement("span");
    author.className = "author";
    author.textContent = m.member || texts.moderator;
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = m.text;
    li.appendChild(author);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(text);
    if (m.kind === "chat" && !m.mine) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link flag";
      button.textContent = texts.flag;
      var vh = document.createElement("span");
      vh.className = "vh";
      vh.textContent = ": " + m.member;
      button.appendChild(vh);
      button.addEventListener("click", function () { flag(m.seq, button); });
      li.appendChild(document.createTextNode(" "));
      li.appendChild(button);
    }
    return li;
  }
  function message(m) {
    lastSeq = Math.max(lastSeq, m.seq);
    // A nudge to someone else reaches this client as a stub (its seq only): nothing to show.
    if (m.type === "nudge" && m.to !== config.me_id) { return; }
    m.mine = m.member_id === config.me_id;
    if (m.mine && m.client_id) { acknowledged(m.client_id); }
    if (document.getElementById("m-" + m.seq)) { if (m.hidden) { hide(m.seq); } return; }
    var li = messageNode(m);
    // In seq order, whatever order the events came in.
    var after = null;
    list.querySelectorAll("li[data-seq]").forEach(function (other) {
      if (!after && parseInt(other.dataset.seq, 10) > m.seq) { after = other; }
    });
    list.insertBefore(li, after);
    lastSeq = Math.max(lastSeq, m.seq);
    document.getElementById("no-messages").hidden = true;
    if (m.hidden || hidden[m.seq]) { hide(m.seq); }
    if (m.kind === "prompt" || m.kind === "nudge" || m.kind === "system") { say(m.text); }
  }
  function hide(seq) {
    hidden[seq] = true;
    var li = document.getElementById("m-" + seq);
    if (!li || li.classList.contains("is-hidden")) { return; }
    li.classList.add("is-hidden");
    // Hidden for everyone, the author too: the room reads what the group decided to hide.
    li.querySelector(".text").textContent = texts.hidden;
    var flagControl = li.querySelector(".flag-form, .flag");
    if (flagControl) { flagControl.hidden = true; }
  }
  function show(m) {
    // An organiser showed a hidden message again: redraw it, with its text, in its place.
    delete hidden[m.seq];
    var li = document.getElementById("m-" + m.seq);
    if (li && !li.classList.contains("is-hidden")) { return; }
    if (li) { li.parentNode.removeChild(li); }
    message(Object.assign({}, m, {type: m.kind === "nudge" ? "nudge" : "message", hidden: false}));
  }
  function error(event) {
    var box = document.getElementById(event.code && event.code.indexOf("question") === 0 ? "question-error" : "composer-error");
    box.textContent = event.message;
    box.hidden = false;
    if (event.client_id) {
      // Refused for good (too long, out of turn...): the text goes back to the box to be changed.
      var item = outbox.filter(function (i) { return i.client_id === event.client_id; })[0];
      acknowledged(event.client_id);
      var field = document.getElementById(item && item.type === "question_draft" ? "question-text" : "message-text");
      if (item && !field.value) { field.value = item.text; }
    }
  }
  var votedItem = null;
  function state(s) {
    clockOffset = Date.parse(s.now) - Date.now();
    deadline = s.deadline ? Date.parse(s.deadline) : null;
    var items = s.items || [];
    var current = items[s.item];
    var phase = s.state === "item" ? fill(texts.option, {n: s.item + 1, total: items.length})
      : s.state === "questions" ? texts.questions : s.state === "waiting" ? texts.waiting : texts.ended;
    document.getElementById("phase").textContent = phase;
    // The option's text is the poll's own markup, drawn by the server in the agenda list.
    var agenda = document.querySelectorAll("#agenda li");
    var currentNode = agenda[s.item];
    document.getElementById("current-option").innerHTML = s.state === "item" && currentNode ? currentNode.innerHTML : "";
    agenda.forEach(function (li, i) {
      if (s.state === "item" && i === s.item) { li.setAttribute("aria-current", "step"); } else { li.removeAttribute("aria-current"); }
    });
    document.getElementById("timer-line").hidden = !deadline;
    var names = {};
    var members = document.getElementById("members");
    members.textContent = "";
    (s.members || []).forEach(function (m) {
      names[m.id] = m.pseudonym;
      var li = document.createElement("li");
      li.textContent = m.pseudonym + (m.id === config.me_id ? " (" + texts.you + ")" : "");
      members.appendChild(li);
    });
    var turnName = s.turn && s.turn.member;
    turnChanged(turnName, lastState === null);
    var queue = s.queue || [];
    var hands = document.getElementById("hands");
    hands.textContent = "";
    queue.forEach(function (id) { var li = document.createElement("li"); li.textContent = names[id] || ""; hands.appendChild(li); });
    document.getElementById("no-hands").hidden = queue.length > 0;
    var raised = queue.indexOf(config.me_id) >= 0;
    var handButton = document.getElementById("hand-button");
    handButton.textContent = raised ? handButton.dataset.lower : handButton.dataset.raise;
    handButton.setAttribute("aria-pressed", raised ? "true" : "false");
    document.getElementById("hand-type").value = raised ? "lower_hand" : "raise_hand";
    var key = s.state + ":" + s.item;
    var iVoted = (s.move_on_voters || []).indexOf(config.me_id) >= 0 || votedItem === key;
    document.getElementById("vote-button").disabled = s.state !== "item" || iVoted;
    var votes = document.getElementById("votes");
    votes.textContent = fill(votes.dataset.template, {votes: s.move_on_votes, needed: s.move_on_needed});
    questions(s);
    if (lastState !== null && key !== lastState) {
      say(phase + (s.state === "item" && current ? ": " + current.text : ""));
    }
    lastState = key;
    if (s.state === "closed") { window.setTimeout(function () { window.location.assign(config.page); }, 1500); }
  }
  function turnChanged(name, quiet) {
    var turn = document.getElementById("turn");
    turn.hidden = !name;
    document.getElementById("turn-name").textContent = name || "";
    if (!quiet && name && name !== turn.dataset.was) {
      say(name === config.me ? texts.yourTurn : fill(texts.turnNow, {name: name}));
    }
    turn.dataset.was = name || "";
  }
  var votedQuestions = {};
  function questions(s) {
    var section = document.getElementById("questions");
    section.hidden = s.state !== "questions";
    if (s.state !== "questions") { return; }
    var ul = document.getElementById("question-list");
    ul.textContent = "";
    (s.questions || []).forEach(function (q) {
      var li = document.createElement("li");
      li.dataset.question = q.id;
      var text = document.createElement("span");
      text.className = "q-text";
      text.textContent = q.text;
      var count = document.createElement("span");
      count.className = "q-votes";
      count.textContent = " " + fill(texts.votes, {n: q.votes}) + " ";
      li.appendChild(text);
      li.appendChild(count);
      if (votedQuestions[q.id] || (q.voters || []).indexOf(config.me_id) >= 0) {
        var done = document.createElement("span");
        done.className = "voted";
        done.textContent = texts.voted;
        li.appendChild(done);
      } else if (q.member_id !== config.me_id) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "link";
        button.textContent = texts.vote;
        button.addEventListener("click", function () { voteQuestion(q.id); button.disabled = true; });
        li.appendChild(button);
      }
      ul.appendChild(li);
    });
  }
  function voteQuestion(id) {
    votedQuestions[id] = true;
    transmit({type: "question_vote", question: id});
  }
  function flag(seq, button) {
    transmit({type: "flag", seq: seq});
    var note = document.createElement("span");
    note.className = "flagged";
    note.setAttribute("role", "status");
    note.textContent = texts.flagged;
    button.replaceWith(note);
  }

  // -- the timer ---------------------------------------------------------------------------
  var timer = document.getElementById("timer");
  var pingedFor = null;
  function tick() {
    if (!deadline) { return; }
    var left = Math.max(0, Math.round((deadline - (Date.now() + clockOffset)) / 1000));
    timer.textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2);
    if (left === 60) { say(timer.parentNode.textContent); }
    // At the deadline the client asks the room to move on: without a worker (the embedded
    // default) a ping is what ticks the moderator; with one, it changes nothing.
    if (left === 0 && pingedFor !== deadline) {
      pingedFor = deadline;
      if (socket && socket.readyState === 1) { socket.send(JSON.stringify({type: "ping"})); } else if (polling) { poll(); }
    }
  }
  if (timer.dataset.deadline) {
    deadline = Date.parse(timer.dataset.deadline);
    clockOffset = Date.parse(timer.dataset.now) - Date.now();
  }
  window.setInterval(tick, 1000);
  tick();

  // -- the forms ---------------------------------------------------------------------------
  function intercept(id, build) {
    var form = document.getElementById(id);
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var payload = build(form);
      if (payload) { queue(payload); }
    });
  }
  function textPayload(type, fieldId, errorId, max) {
    return function () {
      var field = document.getElementById(fieldId);
      var box = document.getElementById(errorId);
      var text = field.value.trim();
      box.hidden = true;
      if (!text) { box.textContent = texts.empty; box.hidden = false; field.focus(); return null; }
      if (text.length > max) { box.textContent = fill(texts.tooLong, {n: max}); box.hidden = false; field.focus(); return null; }
      field.value = "";
      var payload = {type: type, client_id: uuid(), text: text};
      if (type === "post") { showPending(payload); }
      return payload;
    };
  }
  function showPending(payload) {
    var li = document.createElement("li");
    li.className = "message mine pending";
    li.id = "pending-" + payload.client_id;
    var author = document.createElement("span");
    author.className = "author";
    author.textContent = config.me;
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = payload.text + " (" + texts.sending + ")";
    li.appendChild(author);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(text);
    document.getElementById("messages-end").before(li);
  }
  intercept("composer", textPayload("post", "message-text", "composer-error", config.max_message));
  intercept("question-form", textPayload("question_draft", "question-text", "question-error", config.max_question));
  intercept("hand-form", function () { return {type: document.getElementById("hand-type").value}; });
  intercept("vote-form", function () { document.getElementById("vote-button").disabled = true; votedItem = lastState; return {type: "vote_move_on"}; });
  list.querySelectorAll(".flag-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      flag(parseInt(form.querySelector("input[name=seq]").value, 10), form);
    });
  });
  document.querySelectorAll(".vote-question").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      voteQuestion(parseInt(form.querySelector("input[name=question]").value, 10));
      form.querySelector("button").disabled = true;
    });
  });
  // Enter sends, Shift+Enter starts a new line (as in other chats).
  document.getElementById("message-text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      document.getElementById("composer").requestSubmit();
    }
  });
  outbox.forEach(function (item) { if (item.type === "post") { showPending(item); } });
  // Presence: the room counts a member as there while their client is heard from.
  window.setInterval(function () {
    if (socket && socket.readyState === 1) { socket.send(JSON.stringify({type: "ping"})); }
  }, 20000);
  if (window.WebSocket) { connect(); } else { startPolling(); }
})();
