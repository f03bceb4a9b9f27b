// The live room client: one WebSocket, lines drawn with textContent only (never HTML).
// The protocol is in docs/MEMBERS.md ("Chat rooms"); the server renders the history for
// readers without JavaScript, and this takes over when it runs.
(function () {
  "use strict";
  var root = document.getElementById("room");
  if (!root || !root.dataset.mayJoin || !window.WebSocket) { return; }
  var data = root.dataset;
  // the page's words, in its language (data-t-* attributes of the room)
  var t = {
    socket: data.socket, me: data.me, connecting: data.tConnecting, live: data.tLive,
    closed: data.tClosed, mute: data.tMute, kick: data.tKick, muted: data.tMuted,
    moderationMute: data.tModerationMute, moderationKick: data.tModerationKick
  };
  var lines = document.getElementById("room-lines");
  var form = document.getElementById("room-say");
  var input = document.getElementById("room-text");
  var status = document.getElementById("room-status");
  var socket = null;
  var moderator = !!data.moderator;
  var seen = {};

  function setStatus(text, isError) {
    status.textContent = text;
    status.className = "room-status" + (isError ? " error" : "");
  }

  // The page's sentences carry Django's placeholders ("%(member)s"); fill them as text.
  function fill(sentence, name, value) {
    return sentence.split("%(" + name + ")s").join(value);
  }

  function nonce() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function atBottom() { return lines.scrollHeight - lines.scrollTop - lines.clientHeight < 40; }

  function modButton(label, type, minutes, member) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "small secondary mod";
    button.textContent = label;
    button.addEventListener("click", function () {
      send({type: type, member: member, minutes: minutes});
    });
    return button;
  }

  function addTools(item, author) {
    if (!moderator || author === t.me || item.querySelector(".mod")) { return; }
    item.append(modButton(t.mute, "mute", 10, author), modButton(t.kick, "kick", 60, author));
  }

  function addLine(message) {
    if (seen[message.id]) { return; }
    seen[message.id] = true;
    var empty = document.getElementById("room-empty");
    if (empty) { empty.remove(); }
    var follow = atBottom();
    var item = document.createElement("li");
    item.dataset.id = message.id;
    var time = document.createElement("time");
    var when = new Date(message.sent_at);
    time.dateTime = message.sent_at;
    time.textContent = ("0" + when.getHours()).slice(-2) + ":" + ("0" + when.getMinutes()).slice(-2);
    var author = document.createElement("strong");
    author.className = "author";
    author.textContent = message.author;
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text;
    item.append(time, " ", author, " ", text);
    lines.append(item);
    addTools(item, message.author);
    if (follow) { lines.scrollTop = lines.scrollHeight; }
  }

  function notice(text) {
    var item = document.createElement("li");
    item.className = "notice";
    item.textContent = text;
    lines.append(item);
    lines.scrollTop = lines.scrollHeight;
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(frame)); }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + t.socket);
    setStatus(t.connecting, false);
    socket.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "joined") {
        moderator = frame.you.moderator;
        lines.querySelectorAll("li[data-id]").forEach(function (li) {
          seen[li.dataset.id] = true;
          var author = li.querySelector(".author");
          if (author) { addTools(li, author.textContent); }
        });
        frame.history.forEach(addLine);
        form.hidden = false;
        setStatus(frame.you.muted_until ? fill(t.muted, "until", frame.you.muted_until) : t.live,
                  !!frame.you.muted_until);
      } else if (frame.type === "message") {
        addLine(frame.message);
      } else if (frame.type === "ack") {
        if (input.dataset.nonce === frame.nonce) { input.value = ""; delete input.dataset.nonce; }
      } else if (frame.type === "muted") {
        setStatus(fill(t.muted, "until", frame.until), true);
      } else if (frame.type === "moderation") {
        notice(fill(frame.action === "kick" ? t.moderationKick : t.moderationMute, "member",
                    frame.member));
      } else if (frame.type === "rules") {
        root.dataset.slowMode = frame.slow_mode_seconds;
      } else if (frame.type === "error") {
        setStatus(frame.message, true);
      }
    });
    socket.addEventListener("close", function (event) {
      form.hidden = true;
      // 4xxx: the server said why in its last error frame; keep that message.
      if (event.code < 4000) { setStatus(t.closed, true); }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    if (!input.dataset.nonce) { input.dataset.nonce = nonce(); }
    send({type: "say", text: text, nonce: input.dataset.nonce});
  });
  input.addEventListener("input", function () { delete input.dataset.nonce; });
  connect();
})();
