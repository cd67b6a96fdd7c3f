// Lucky's web chat page: a small client of the public protocol (PROTOCOL.md), with no build
// step and no library. It signs up or logs in over HTTP, keeps the token set in this tab's
// sessionStorage (nowhere else) and refreshes it before it expires, lists conversations with
// their unread counts, loads history over HTTP, and sends and receives live over /ws (auth by
// ?token=, send with a client_msg_id, sent, message, ack, read and receipt, sync after every
// (re)connect). Everything a user wrote is put in the page as text nodes (no HTML is ever
// parsed from a string here), and the page's Content-Security-Policy allows no inline script.
"use strict";

(() => {
  const API = "/api/v1";
  const SAVED = "lucky.chat.v1"; // sessionStorage key: tokens, cursors, receipts, open conversation
  const HISTORY_PAGE = 50;
  const FILE_INFO_TTL_MS = 5 * 60 * 1000; // signed URLs live longer (files.url_ttl_s)

  const $ = (id) => document.getElementById(id);

  const state = {
    tokens: null, // {access_token, refresh_token, expires_at (ms), user}
    users: new Map(), // user id -> user object
    convs: new Map(), // conversation id -> item of GET /conversations
    messages: new Map(), // conversation id -> Map(seq -> message)
    older: new Map(), // conversation id -> whether older history remains on the server
    pending: new Map(), // client_msg_id -> {cid, frame, failed?}
    cursors: {}, // conversation id -> highest seq this tab has (the sync cursors)
    readers: {}, // conversation id -> {user id: seq read} from receipts
    open: null, // the conversation shown
    ws: null,
    online: false,
    attempts: 0,
    timers: {},
    files: new Map(), // file id -> {at, promise of the file object}
    typingSent: new Map(), // conversation id -> ms of the last typing frame sent
    frameIds: 0,
  };

  // ---- small helpers ------------------------------------------------------------------

  // Builds an element; string children become text nodes, so data never becomes markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function randomId() {
    // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function me() {
    return state.tokens ? state.tokens.user : null;
  }

  function userName(user) {
    return user ? user.display_name || user.username : "…";
  }

  function initial(text) {
    const first = Array.from((text || "?").trim())[0] || "?";
    return first.toUpperCase();
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // Signed file URLs name the server's public_url; the page asks its own origin for the
  // same path, so images load under img-src 'self' whatever name the visitor used.
  function sameOrigin(url) {
    const parsed = new URL(url, location.href);
    return parsed.pathname + parsed.search;
  }

  function directId(a, b) {
    return a < b ? `p:${a}:${b}` : `p:${b}:${a}`; // ids are decimal strings: byte-wise order
  }

  function showError(where, error) {
    $(where).textContent = error ? String(error.message || error) : "";
  }

  function save() {
    // Unsent messages too: after a reload they go again with the same client_msg_id, so the
    // server stores each once whether or not the first try arrived.
    const unsent = Array.from(state.pending.values()).filter((e) => e.frame.type === "send" && !e.failed);
    const saved = { tokens: state.tokens, cursors: state.cursors, readers: state.readers, open: state.open, unsent };
    sessionStorage.setItem(SAVED, JSON.stringify(saved));
  }

  // ---- HTTP -----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `The server answered ${status}.`);
      this.status = status;
      this.code = error.code || "";
    }
  }

  async function api(method, path, body, retry = true) {
    const headers = {};
    if (state.tokens) headers.Authorization = `Bearer ${state.tokens.access_token}`;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(API + path, { method, headers, body: payload });
    if (response.status === 401 && retry && state.tokens && !path.startsWith("/auth/")) {
      if (await refreshTokens()) return api(method, path, body, false);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // ---- tokens ---------------------------------------------------------------------------

  function setTokens(set) {
    state.tokens = {
      access_token: set.access_token,
      refresh_token: set.refresh_token,
      expires_at: Date.now() + set.expires_in * 1000,
      user: set.user,
    };
    state.users.set(set.user.id, set.user);
    save();
    clearTimeout(state.timers.refresh);
    // Refresh at 80% of the access token's life: the socket gets the new one in an
    // `auth` frame before the old one expires on it (PROTOCOL.md, limits 1.1).
    const delay = Math.max(5000, set.expires_in * 800);
    state.timers.refresh = setTimeout(() => refreshTokens(), delay);
  }

  let refreshing = null;
  function refreshTokens() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        const set = await api("POST", "/auth/refresh", { refresh_token: state.tokens.refresh_token }, false);
        setTokens(set);
        sendFrame({ type: "auth", access_token: set.access_token });
        return true;
      } catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          signOut("Your session has ended: log in again.");
        } else {
          clearTimeout(state.timers.refresh);
          state.timers.refresh = setTimeout(() => refreshTokens(), 10000);
        }
        return false;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  // Every way of signing in ends here with a token set (password, sign-up, log in with QR).
  async function adoptTokens(set) {
    setTokens(set);
    await start();
  }

  function signOut(reason) {
    const socket = state.ws;
    state.ws = null;
    if (socket) socket.close(1000, "signed out");
    for (const timer of Object.values(state.timers)) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    sessionStorage.removeItem(SAVED);
    state.tokens = null;
    state.convs.clear();
    state.messages.clear();
    state.pending.clear();
    state.cursors = {};
    state.readers = {};
    state.open = null;
    $("app").hidden = true;
    $("signin").hidden = false;
    stopQr();
    $("conversations").replaceChildren();
    $("messages").replaceChildren();
    showError("signin-error", reason || "");
  }

  // ---- conversations --------------------------------------------------------------------

  function convName(conv) {
    if (conv.group) return conv.group.name;
    return userName(conv.peer);
  }

  function mergeConv(item) {
    const known = state.convs.get(item.conversation_id);
    const conv = Object.assign(known || {}, item);
    if (conv.peer) state.users.set(conv.peer.id, conv.peer);
    if (conv.conversation_id === state.open) conv.unread = 0;
    state.convs.set(conv.conversation_id, conv);
    const cid = conv.conversation_id;
    state.cursors[cid] = Math.max(state.cursors[cid] || 0, conv.last_seq || 0);
    return conv;
  }

  function placeholderConv(cid, extra) {
    if (state.convs.has(cid)) return state.convs.get(cid);
    const conv = Object.assign({ conversation_id: cid, last_message: null, last_seq: 0, read_seq: 0, unread: 0 }, extra);
    state.convs.set(cid, conv);
    return conv;
  }

  async function loadConversations() {
    let cursor = null;
    do {
      const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const page = await api("GET", `/conversations?limit=200${query}`);
      page.items.forEach(mergeConv);
      cursor = page.next_cursor;
    } while (cursor);
    // Groups with no message one can see yet are "yours" too.
    const groups = await api("GET", "/groups?limit=200");
    for (const group of groups.items) {
      if (!group.dismissed) placeholderConv(`g:${group.id}`, { kind: "group", group }).group = group;
    }
    save();
    renderConversations();
  }

  let listReload = null;
  function reloadConversationsSoon() {
    if (listReload) return;
    listReload = setTimeout(() => {
      listReload = null;
      loadConversations().catch((error) => showError("side-error", error));
    }, 100);
  }

  function activity(conv) {
    if (conv.last_message) return conv.last_message.created_at;
    return conv.group ? conv.group.created_at : 0;
  }

  function preview(message) {
    if (!message) return "";
    if (message.recalled) return "message recalled";
    if (message.kind === "text") return message.body.text;
    if (message.kind === "image") return "Image";
    if (message.kind === "system") return systemText(message);
    return `[${message.kind}]`;
  }

  function renderConversations() {
    const items = Array.from(state.convs.values()).sort((a, b) => activity(b) - activity(a));
    $("conversations").replaceChildren(...items.map((conv) => {
      const name = convName(conv);
      const unread = conv.unread > 0 ? el("span", { class: "badge", "aria-label": "unread" }, String(conv.unread)) : null;
      return el("li", { "data-cid": conv.conversation_id, class: conv.conversation_id === state.open ? "active" : "" },
        el("button", { type: "button", onclick: () => openConversation(conv.conversation_id) },
          el("span", { class: conv.group ? "avatar group" : "avatar" }, initial(name)),
          el("span", { class: "who" }, el("strong", { class: "name" }, name),
            el("small", { class: "preview" }, preview(conv.last_message))),
          unread));
    }));
  }

  // ---- messages -------------------------------------------------------------------------

  function messagesOf(cid) {
    if (!state.messages.has(cid)) state.messages.set(cid, new Map());
    return state.messages.get(cid);
  }

  // One message from `sent`, `message`, `sync.result` or history: stored once by seq, the
  // list and counters updated. `fresh`: it arrived now (not history), so it may be unread.
  function receive(message, fresh) {
    const cid = message.conversation_id;
    const list = messagesOf(cid);
    const repeat = list.has(message.seq);
    list.set(message.seq, message);
    if (!state.convs.has(cid)) reloadConversationsSoon(); // a conversation someone else started
    const conv = state.convs.get(cid);
    const mine = message.sender_id === me().id;
    if (fresh) {
      state.cursors[cid] = Math.max(state.cursors[cid] || 0, message.seq);
      queueAck(cid);
    }
    if (conv && message.seq >= (conv.last_seq || 0)) {
      conv.last_seq = message.seq;
      conv.last_message = message;
    }
    if (conv && fresh && !repeat) {
      if (mine) {
        conv.unread = 0; // sending moves one's own read cursor (docs/protocol.md)
        conv.read_seq = Math.max(conv.read_seq || 0, message.seq);
      } else if (cid === state.open && document.visibilityState === "visible") {
        markRead(cid);
      } else if (message.seq > (conv.read_seq || 0)) {
        conv.unread = (conv.unread || 0) + 1;
      }
    }
  }

  function queueAck(cid) {
    const acks = state.timers.ackQueue || (state.timers.ackQueue = new Set());
    acks.add(cid);
    if (state.timers.ack) return;
    state.timers.ack = setTimeout(() => {
      state.timers.ack = null;
      for (const id of acks) sendFrame({ type: "ack", conversation_id: id, seq: state.cursors[id] });
      acks.clear();
      save();
    }, 50);
  }

  function markRead(cid) {
    const conv = state.convs.get(cid);
    if (!conv) return;
    conv.unread = 0;
    const seq = conv.last_seq || 0;
    if (seq <= (conv.read_seq || 0)) return;
    conv.read_seq = seq;
    if (!sendFrame({ type: "read", conversation_id: cid, seq })) {
      api("POST", `/conversations/${encodeURIComponent(cid)}/read`, { seq }).catch(() => {});
    }
  }

  async function loadHistory(cid, beforeSeq) {
    const query = beforeSeq ? `&before_seq=${beforeSeq}` : "";
    const page = await api("GET", `/conversations/${encodeURIComponent(cid)}/messages?limit=${HISTORY_PAGE}${query}`);
    page.items.forEach((message) => receive(message, false));
    state.older.set(cid, page.has_more);
  }

  async function openConversation(cid) {
    state.open = cid;
    save();
    showError("pane-error", "");
    const conv = state.convs.get(cid);
    $("empty").hidden = true;
    $("conversation").hidden = false;
    renderTitle(conv);
    renderConversations();
    renderMessages(true);
    try {
      if (conv && conv.last_seq > 0) await loadHistory(cid);
    } catch (error) {
      showError("pane-error", error);
    }
    if (state.open !== cid) return;
    markRead(cid);
    renderConversations();
    renderMessages(true);
    $("text-input").focus();
  }

  function renderTitle(conv) {
    const name = conv ? convName(conv) : "";
    $("title-avatar").textContent = initial(name);
    $("title-avatar").className = conv && conv.group ? "avatar group" : "avatar";
    $("title-name").textContent = name;
    let detail = "";
    if (conv && conv.peer) detail = `@${conv.peer.username}`;
    if (conv && conv.group) detail = `group · ${conv.group.member_count} members`;
    $("title-detail").textContent = detail;
  }

  function senderOf(id) {
    if (state.users.has(id)) return state.users.get(id);
    state.users.set(id, null);
    api("GET", `/users/${encodeURIComponent(id)}`).then((user) => {
      state.users.set(id, user);
      renderMessages(false);
    }).catch(() => {});
    return null;
  }

  const SYSTEM_EVENTS = {
    "group.created": "created the group",
    "group.member_added": "added members",
    "group.member_removed": "removed a member",
    "group.member_left": "left",
    "group.renamed": "renamed the group",
    "group.announcement": "posted an announcement",
    "group.dismissed": "dismissed the group",
  };

  function systemText(message) {
    const actor = userName(senderOf(message.sender_id));
    return `${actor} ${SYSTEM_EVENTS[message.body.event] || message.body.event}`;
  }

  function receiptText(message) {
    const readers = state.readers[message.conversation_id] || {};
    const count = Object.entries(readers).filter(([id, seq]) => id !== me().id && seq >= message.seq).length;
    if (count === 0) return "Sent";
    return message.conversation_id.startsWith("g:") ? `Read by ${count}` : "Read";
  }

  function fileInfo(fileId) {
    const cached = state.files.get(fileId);
    if (cached && Date.now() - cached.at < FILE_INFO_TTL_MS) return cached.promise;
    const promise = api("GET", `/files/${encodeURIComponent(fileId)}`);
    state.files.set(fileId, { at: Date.now(), promise });
    promise.catch(() => state.files.delete(fileId));
    return promise;
  }

  function imageContent(message) {
    const body = message.body;
    const holder = el("a", { class: "image", target: "_blank", rel: "noopener noreferrer" },
      el("span", { class: "loading" }, body.name || "image"));
    fileInfo(body.file_id).then((file) => {
      holder.href = sameOrigin(file.url);
      const img = el("img", { alt: body.name || "image", src: sameOrigin(file.thumbnail_url || file.url) });
      if (body.width && body.height) img.style.aspectRatio = `${body.width} / ${body.height}`;
      holder.replaceChildren(img);
    }).catch((error) => holder.replaceChildren(el("span", { class: "error" }, error.message)));
    return holder;
  }

  function messageContent(message) {
    if (message.recalled) return el("em", {}, "message recalled");
    if (message.kind === "text") return el("span", { class: "text" }, message.body.text);
    if (message.kind === "image") return imageContent(message);
    return el("em", {}, `[${message.kind}]`);
  }

  function messageItem(message) {
    if (message.kind === "system") {
      return el("li", { class: "system", "data-seq": message.seq }, systemText(message));
    }
    const mine = message.sender_id === me().id;
    const group = message.conversation_id.startsWith("g:");
    return el("li", { class: mine ? "msg mine" : "msg theirs", "data-seq": message.seq },
      group && !mine ? el("span", { class: "sender" }, userName(senderOf(message.sender_id))) : null,
      el("div", { class: "bubble" }, messageContent(message)),
      el("span", { class: "meta" }, clock(message.created_at),
        message.edited_at ? " · edited" : "",
        mine ? el("span", { class: "receipt" }, receiptText(message)) : null));
  }

  function pendingItem(clientMsgId, entry) {
    const frame = entry.frame;
    const content = frame.kind === "text" ? el("span", { class: "text" }, frame.body.text)
      : el("em", {}, frame.kind === "upload" ? `uploading ${frame.body.name}…` : `[${frame.kind}]`);
    return el("li", { class: entry.failed ? "msg mine failed" : "msg mine pending", "data-client-msg-id": clientMsgId },
      el("div", { class: "bubble" }, content),
      el("span", { class: "meta" }, el("span", { class: "receipt" }, entry.failed ? `Not sent: ${entry.failed}` : "Sending…")));
  }

  function renderMessages(toBottom) {
    const cid = state.open;
    if (!cid) return;
    const box = $("messages");
    const nearBottom = toBottom || box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const items = [];
    if (state.older.get(cid)) {
      items.push(el("li", { class: "older" }, el("button", { type: "button", class: "quiet", onclick: loadOlder }, "Earlier messages")));
    }
    const list = Array.from(messagesOf(cid).values()).sort((a, b) => a.seq - b.seq);
    items.push(...list.map(messageItem));
    for (const [id, entry] of state.pending) if (entry.cid === cid) items.push(pendingItem(id, entry));
    box.replaceChildren(...items);
    if (nearBottom) box.scrollTop = box.scrollHeight;
  }

  async function loadOlder() {
    const cid = state.open;
    const seqs = Array.from(messagesOf(cid).keys());
    const height = $("messages").scrollHeight;
    try {
      await loadHistory(cid, Math.min(...seqs));
    } catch (error) {
      showError("pane-error", error);
    }
    renderMessages(false);
    $("messages").scrollTop += $("messages").scrollHeight - height;
  }

  function refresh() {
    save();
    renderConversations();
    if (state.open) {
      renderTitle(state.convs.get(state.open));
      renderMessages(false);
    }
  }

  // ---- sending --------------------------------------------------------------------------

  function target(cid) {
    if (cid.startsWith("g:")) return { group_id: cid.slice(2) };
    const [, a, b] = cid.split(":");
    return { to: a === me().id ? b : a };
  }

  function send(cid, kind, body) {
    const clientMsgId = randomId();
    const frame = { type: "send", id: clientMsgId, client_msg_id: clientMsgId, kind, body, ...target(cid) };
    state.pending.set(clientMsgId, { cid, frame });
    save();
    sendFrame(frame); // when offline it stays pending and goes again after the next welcome
    renderMessages(true);
  }

  async function sendImage(cid, file) {
    const placeholder = randomId();
    state.pending.set(placeholder, { cid, frame: { kind: "upload", body: { name: file.name } } });
    renderMessages(true);
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const stored = await api("POST", "/files", form);
      state.files.set(stored.id, { at: Date.now(), promise: Promise.resolve(stored) });
      const body = { file_id: stored.id, name: stored.name, size: stored.size };
      if (stored.width) Object.assign(body, { width: stored.width, height: stored.height });
      state.pending.delete(placeholder);
      send(cid, "image", body);
    } catch (error) {
      state.pending.get(placeholder).failed = error.message;
      renderMessages(false);
    }
  }

  // ---- the WebSocket --------------------------------------------------------------------

  function sendFrame(frame) {
    const socket = state.ws;
    if (!socket || socket.readyState !== WebSocket.OPEN || !state.online) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function setOnline(online) {
    state.online = online;
    const badge = $("connection");
    badge.textContent = online ? "online" : "offline";
    badge.className = online ? "connection online" : "connection offline";
  }

  async function connect() {
    if (!state.tokens || state.ws) return;
    if (state.tokens.expires_at - Date.now() < 30000 && !(await refreshTokens())) {
      scheduleReconnect();
      return;
    }
    if (!state.tokens || state.ws) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(state.tokens.access_token)}`);
    state.ws = socket;
    socket.addEventListener("message", (event) => {
      if (state.ws !== socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      onFrame(frame);
    });
    socket.addEventListener("close", () => {
      if (state.ws !== socket) return;
      state.ws = null;
      setOnline(false);
      clearInterval(state.timers.ping);
      if (state.tokens) scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    clearTimeout(state.timers.reconnect);
    state.attempts += 1;
    // Backoff with jitter; after two failures the token may be what the upgrade refused.
    const delay = Math.min(15000, 500 * 2 ** Math.min(state.attempts, 5)) * (0.5 + Math.random() / 2);
    state.timers.reconnect = setTimeout(async () => {
      if (state.attempts > 2 && state.tokens) await refreshTokens();
      connect();
    }, delay);
  }

  function syncFrom() {
    sendFrame({ type: "sync", id: `sync-${++state.frameIds}`, cursors: { ...state.cursors }, limit: 500 });
  }

  const KICKED = {
    disabled: "This account has been disabled.",
    signed_out: "This session was ended (from another device or by an admin).",
  };

  function onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        state.attempts = 0;
        setOnline(true);
        clearInterval(state.timers.ping);
        state.timers.ping = setInterval(() => sendFrame({ type: "ping" }), Math.max(5, frame.heartbeat_s / 2) * 1000);
        syncFrom();
        for (const entry of state.pending.values()) if (entry.frame.type === "send" && !entry.failed) sendFrame(entry.frame);
        break;
      case "sync.result":
        frame.messages.forEach((message) => receive(message, true));
        if (frame.more) syncFrom();
        refresh();
        break;
      case "sent":
        state.pending.delete(frame.message.client_msg_id);
        receive(frame.message, true);
        refresh();
        break;
      case "message":
      case "message.updated":
        receive(frame.message, frame.type === "message");
        refresh();
        break;
      case "receipt": {
        const conv = state.convs.get(frame.conversation_id);
        if (frame.user_id === me().id) {
          if (conv && frame.seq >= (conv.last_seq || 0)) conv.unread = 0; // read on another device
        } else {
          const readers = state.readers[frame.conversation_id] || (state.readers[frame.conversation_id] = {});
          readers[frame.user_id] = Math.max(readers[frame.user_id] || 0, frame.seq);
        }
        refresh();
        break;
      }
      case "typing":
        if (frame.conversation_id === state.open && frame.user_id !== me().id) {
          const who = userName(senderOf(frame.user_id));
          $("title-detail").textContent = `${who} is typing…`;
          clearTimeout(state.timers.typing);
          state.timers.typing = setTimeout(() => renderTitle(state.convs.get(state.open)), 3000);
        }
        break;
      case "error": {
        const entry = frame.id ? state.pending.get(frame.id) : null;
        if (entry && frame.code === "rate_limited") {
          setTimeout(() => sendFrame(entry.frame), 1000); // dropped, not refused: try again
        } else if (entry) {
          entry.failed = frame.message;
          renderMessages(false);
        } else if (frame.code !== "rate_limited") {
          showError("pane-error", frame.message);
        }
        break;
      }
      case "kick":
        if (frame.reason === "token_expired") {
          refreshTokens();
        } else {
          signOut(KICKED[frame.reason] || "You have been signed out: log in again.");
        }
        break;
      default:
        break; // pong, ok, presence, calls: nothing to show here
    }
  }

  // ---- log in with QR (this browser) and scan a QR login (this page as the phone) --------

  // One QR session at a time; `run` tells a finished or abandoned poll loop to stop.
  const qr = { run: 0 };
  const QR_WAIT_S = 25; // the server's long-poll holds the answer this long (at most 30)

  function stopQr() {
    qr.run += 1;
    $("qr-box").hidden = true;
    $("qr-image").removeAttribute("src");
    $("qr-button").hidden = false;
  }

  function qrStatus(text) {
    $("qr-status").textContent = text;
  }

  async function startQr() {
    showError("signin-error", "");
    stopQr();
    const run = qr.run;
    let session;
    try {
      // No body: the server names this new device after the browser (its User-Agent).
      session = await api("POST", "/auth/qr");
    } catch (error) {
      showError("signin-error", error);
      return;
    }
    if (run !== qr.run) return;
    $("qr-button").hidden = true;
    $("qr-box").hidden = false;
    $("qr-image").src = `${API}/auth/qr/${encodeURIComponent(session.qr_id)}.png`;
    qrStatus("Scan this code with the Lucky app on a phone where you are signed in.");
    const poll = `/auth/qr/${encodeURIComponent(session.qr_id)}?poll_token=${encodeURIComponent(session.poll_token)}`;
    let wait = 0;
    while (run === qr.run) {
      let answer;
      try {
        answer = await api("GET", `${poll}&wait=${wait}`);
      } catch (error) {
        if (run !== qr.run) return;
        if (error.status === 429 || error.status >= 500 || !error.status) {
          await new Promise((resolve) => setTimeout(resolve, 3000)); // try again
          continue;
        }
        qrStatus(String(error.message));
        return;
      }
      if (run !== qr.run) return;
      wait = QR_WAIT_S;
      if (answer.state === "scanned") {
        qrStatus(`Scanned by ${userName(answer.scanned_by)}: confirm on that device.`);
      } else if (answer.state === "confirmed" && answer.access_token) {
        stopQr();
        await adoptTokens(answer); // the same end as a password sign-in
        return;
      } else if (answer.state !== "pending") {
        const why = { expired: "The code expired.", cancelled: "The sign-in was cancelled on the phone.",
          confirmed: "This code was used already." }[answer.state] || `The sign-in ended (${answer.state}).`;
        $("qr-image").removeAttribute("src");
        $("qr-box").hidden = true;
        $("qr-button").hidden = false;
        showError("signin-error", `${why} Log in with QR again for a new code.`);
        return;
      }
    }
  }

  // `lucky://qr/<qr_id>?s=<server>` (what the code holds) or a bare qr_id.
  function qrIdOf(text) {
    const value = text.trim();
    const match = /^lucky:\/\/qr\/([A-Za-z0-9_-]+)/.exec(value);
    if (match) return match[1];
    return /^[A-Za-z0-9_-]+$/.test(value) ? value : null;
  }

  const scanning = { id: null };

  async function scanQr(event) {
    event.preventDefault();
    $("scan-confirm").hidden = true;
    const id = qrIdOf($("scan-input").value);
    if (!id) {
      $("scan-status").textContent = "That is not a Lucky QR login.";
      return;
    }
    try {
      await api("POST", `/auth/qr/${encodeURIComponent(id)}/scan`);
      scanning.id = id;
      $("scan-confirm").hidden = false;
      $("scan-status").textContent = `Sign that browser in as ${userName(me())}? It gets its own session.`;
    } catch (error) {
      $("scan-status").textContent = String(error.message);
    }
  }

  async function answerQr(action) {
    const id = scanning.id;
    if (!id) return;
    $("scan-confirm").hidden = true;
    scanning.id = null;
    try {
      await api("POST", `/auth/qr/${encodeURIComponent(id)}/${action}`);
      $("scan-input").value = "";
      $("scan-status").textContent = action === "confirm" ? "That browser is signed in." : "Cancelled.";
    } catch (error) {
      $("scan-status").textContent = String(error.message);
    }
  }

  // ---- starting -------------------------------------------------------------------------

  async function start() {
    $("signin").hidden = true;
    $("app").hidden = false;
    const user = me();
    $("me-avatar").textContent = initial(userName(user));
    $("me-name").textContent = userName(user);
    $("me-username").textContent = `@${user.username}`;
    try {
      await loadConversations();
    } catch (error) {
      showError("side-error", error);
    }
    if (!state.tokens) return;
    connect();
    if (state.convs.has(state.open)) openConversation(state.open);
    else state.open = null; // a conversation started here that never got a message
  }

  async function findUsers(event) {
    event.preventDefault();
    showError("side-error", "");
    const q = $("find-input").value.trim().toLowerCase();
    if (!q) return;
    try {
      const page = await api("GET", `/users?q=${encodeURIComponent(q)}&limit=10`);
      const others = page.items.filter((user) => user.id !== me().id);
      others.forEach((user) => state.users.set(user.id, user));
      $("find-results").replaceChildren(...(others.length ? others.map((user) =>
        el("li", {}, el("button", { type: "button", onclick: () => chatWith(user) },
          el("span", { class: "avatar" }, initial(userName(user))),
          el("span", { class: "who" }, el("strong", {}, userName(user)), el("small", {}, `@${user.username}`)))))
        : [el("li", { class: "none" }, `No user named ${q}…`)]));
    } catch (error) {
      showError("side-error", error);
    }
  }

  function chatWith(user) {
    $("find-results").replaceChildren();
    $("find-input").value = "";
    const cid = directId(me().id, user.id);
    placeholderConv(cid, { kind: "direct", peer: user });
    openConversation(cid);
  }

  async function userByName(name) {
    const page = await api("GET", `/users?q=${encodeURIComponent(name)}&limit=10`);
    const user = page.items.find((u) => u.username === name);
    if (!user) throw new Error(`No user named ${name}.`);
    return user;
  }

  async function createGroup(event) {
    event.preventDefault();
    showError("side-error", "");
    const names = $("group-members").value.split(/[\s,]+/).map((n) => n.trim().toLowerCase())
      .filter((n) => n && n !== me().username);
    try {
      const members = await Promise.all(names.map(userByName));
      const group = await api("POST", "/groups", { name: $("group-name").value.trim(), member_ids: members.map((u) => u.id) });
      $("group-form").reset();
      $("group-form").closest("details").open = false;
      const conv = placeholderConv(`g:${group.id}`, { kind: "group", group });
      openConversation(conv.conversation_id);
    } catch (error) {
      showError("side-error", error);
    }
  }

  async function signIn(register) {
    showError("signin-error", "");
    const form = $("password-form");
    if (!form.reportValidity()) return;
    const username = $("username").value.trim();
    const password = $("password").value;
    try {
      let set;
      if (register) {
        const body = { username, password };
        const displayName = $("display-name").value.trim();
        if (displayName) body.display_name = displayName;
        set = await api("POST", "/auth/register", body);
      } else {
        set = await api("POST", "/auth/login", { username, password, device: { name: "Web chat", platform: "web" } });
      }
      $("password").value = "";
      await adoptTokens(set);
    } catch (error) {
      showError("signin-error", error);
    }
  }

  function wire() {
    $("password-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signIn(false);
    });
    $("signup-button").addEventListener("click", () => signIn(true));
    $("logout-button").addEventListener("click", async () => {
      try {
        await api("POST", "/auth/logout", undefined, false);
      } catch (_) {
        // signed out here whatever the server says
      }
      signOut("");
    });
    $("find-form").addEventListener("submit", findUsers);
    $("qr-button").addEventListener("click", () => startQr());
    $("qr-back").addEventListener("click", () => stopQr());
    $("scan-form").addEventListener("submit", scanQr);
    $("scan-yes").addEventListener("click", () => answerQr("confirm"));
    $("scan-no").addEventListener("click", () => answerQr("cancel"));
    $("group-form").addEventListener("submit", createGroup);
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = $("text-input").value;
      if (!text.trim() || !state.open) return;
      $("text-input").value = "";
      send(state.open, "text", { text });
    });
    $("text-input").addEventListener("input", () => {
      const cid = state.open;
      const last = state.typingSent.get(cid) || 0;
      if (cid && Date.now() - last > 2000 && state.convs.get(cid)?.last_seq > 0) {
        state.typingSent.set(cid, Date.now());
        sendFrame({ type: "typing", conversation_id: cid });
      }
    });
    $("image-input").addEventListener("change", () => {
      const file = $("image-input").files[0];
      $("image-input").value = "";
      if (file && state.open) sendImage(state.open, file);
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && state.open) {
        markRead(state.open);
        refresh();
      }
    });
  }

  function boot() {
    wire();
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(SAVED) || "null");
    } catch (_) {
      saved = null;
    }
    if (saved && saved.tokens) {
      state.tokens = saved.tokens;
      state.cursors = saved.cursors || {};
      state.readers = saved.readers || {};
      state.open = saved.open || null;
      for (const entry of saved.unsent || []) state.pending.set(entry.frame.client_msg_id, entry);
      state.users.set(saved.tokens.user.id, saved.tokens.user);
      const left = Math.max(0, saved.tokens.expires_at - Date.now());
      state.timers.refresh = setTimeout(() => refreshTokens(), Math.max(1000, left - 60000));
      start();
    } else {
      $("signin").hidden = false;
    }
  }

  boot();
})();
