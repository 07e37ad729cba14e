/* The resident page: report a matter (category, description, position on the map or an address,
   photos, phone), then follow it with the ticket and its tracking token, and rate the result.
   Everything it loads comes from this server (offline intranets). */
(function () {
  "use strict";
  var C = window.REPORT_CONFIG;
  var T = {
    zh: {
      new: "我要反映", find: "查询进度", category: "问题类别", description: "问题描述",
      position: "问题位置", tap_map: "请在地图上点选问题所在位置", picked: "已选位置", locate: "使用我的当前位置",
      address: "或填写地址（无法选点时）", photos: "现场照片（最多9张，可不传）", phone: "手机号码（可不填，便于回访）",
      submit: "提交", sending: "正在提交…", ticket: "票号", token: "查询码", find: "查询",
      received: "已收到您的反映", keep: "请保存票号和查询码，用于查询进度和评价：", again: "再反映一件",
      status: "当前状态", unit: "处理单位", rate: "请对处理结果评价", satisfied: "满意",
      basically_satisfied: "基本满意", dissatisfied: "不满意", rated: "您的评价：", thanks: "感谢您的评价",
      mine: "本机提交过的事项", need_position: "请在地图上选点，或填写地址", too_many: "最多上传9张照片",
      no_geo: "无法获取当前位置，请在地图上点选", need_ticket: "请填写票号和查询码"
    },
    en: {
      new: "Report", find: "Follow up", category: "Category", description: "What is wrong",
      position: "Where", tap_map: "Tap the map where the problem is", picked: "Picked", locate: "Use my location",
      address: "Or type an address (if you cannot pick)", photos: "Photos (up to 9, optional)",
      phone: "Phone (optional, for a call back)", submit: "Send", sending: "Sending…", ticket: "Ticket",
      token: "Tracking code", find: "Look up", received: "Your report was received",
      keep: "Keep the ticket and tracking code to follow it and rate it:", again: "Report another",
      status: "State", unit: "Handled by", rate: "How was it handled?", satisfied: "Satisfied",
      basically_satisfied: "Basically satisfied", dissatisfied: "Dissatisfied", rated: "Your rating: ",
      thanks: "Thank you for rating", mine: "Sent from this phone", need_position: "Pick a place on the map or type an address",
      too_many: "At most 9 photos", no_geo: "Your location is unavailable; tap the map", need_ticket: "Give the ticket and code"
    }
  }[C.lang];
  var $ = function (id) { return document.getElementById(id); };
  var api = function (path) { return path + (path.indexOf("?") < 0 ? "?" : "&") + "lang=" + C.lang; };
  document.querySelectorAll("[data-t]").forEach(function (el) { el.textContent = T[el.dataset.t]; });
  $("tab-new").textContent = T.new;
  $("tab-find").textContent = T.find;

  // A device id of this browser, for the per-device limit (random; nothing about the person).
  var device = localStorage.getItem("gridmap.device");
  if (!device) {
    device = "web-" + Array.from(crypto.getRandomValues(new Uint8Array(12)), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
    localStorage.setItem("gridmap.device", device);
  }

  C.categories.forEach(function (c) {
    var o = document.createElement("option");
    o.value = c.code;
    o.textContent = c.group + " · " + c.name;
    $("category").appendChild(o);
  });

  // The map: the county's towns and villages (served by this server), on the intranet's tiles if any.
  var map = L.map("map", { zoomControl: true, attributionControl: false });
  if (C.tile_url) L.tileLayer(C.tile_url, { maxZoom: 19 }).addTo(map);
  map.setView([C.center[1], C.center[0]], 11);
  var marker = null, picked = null;
  fetch(api("/public/areas")).then(function (r) { return r.json(); }).then(function (fc) {
    var layer = L.geoJSON(fc, {
      style: function (f) {
        var town = f.properties.layer === "town";
        return { color: town ? "#1677ff" : "#86909c", weight: town ? 2 : 1, fillOpacity: 0.04 };
      },
      onEachFeature: function (f, l) { l.bindTooltip(f.properties.name); }
    }).addTo(map);
    layer.on("click", function (e) { pick(e.latlng); });
    if (fc.features.length) map.fitBounds(layer.getBounds());
  });
  function pick(latlng) {
    picked = latlng;
    if (marker) marker.setLatLng(latlng); else marker = L.marker(latlng).addTo(map);
    $("position-hint").textContent = T.picked + " " + latlng.lat.toFixed(5) + ", " + latlng.lng.toFixed(5);
  }
  map.on("click", function (e) { pick(e.latlng); });
  $("locate").addEventListener("click", function () {
    if (!navigator.geolocation) { $("report-error").textContent = T.no_geo; return; }
    navigator.geolocation.getCurrentPosition(function (p) {
      var ll = L.latLng(p.coords.latitude, p.coords.longitude);  // browsers give WGS-84
      pick(ll);
      map.setView(ll, 16);
    }, function () { $("report-error").textContent = T.no_geo; }, { timeout: 8000 });
  });

  // Photos: shrunk on the phone to 1600 px JPEG before upload (mobile networks), checked again
  // by the server by their content.
  var photos = [];
  function shrink(file) {
    return new Promise(function (resolve) {
      var img = new Image();
      img.onload = function () {
        var s = Math.min(1, 1600 / Math.max(img.width, img.height));
        var cv = document.createElement("canvas");
        cv.width = Math.round(img.width * s);
        cv.height = Math.round(img.height * s);
        cv.getContext("2d").drawImage(img, 0, 0, cv.width, cv.height);
        URL.revokeObjectURL(img.src);
        cv.toBlob(function (b) { resolve(b || file); }, "image/jpeg", 0.85);
      };
      img.onerror = function () { resolve(file); };  // not decodable here: let the server say why
      img.src = URL.createObjectURL(file);
    });
  }
  $("photos").addEventListener("change", function (e) {
    var files = Array.from(e.target.files || []);
    $("report-error").textContent = photos.length + files.length > 9 ? T.too_many : "";
    files.slice(0, 9 - photos.length).forEach(function (f) {
      shrink(f).then(function (b) {
        photos.push(b);
        var im = document.createElement("img");
        im.src = URL.createObjectURL(b);
        $("thumbs").appendChild(im);
      });
    });
  });

  function errorText(body) {
    if (body && Array.isArray(body.detail)) return body.detail.map(function (d) { return d.msg; }).join("；");
    return (body && (body.message || body.detail)) || "error";
  }

  $("report").addEventListener("submit", function (e) {
    e.preventDefault();
    var address = $("address").value.trim();
    if (!picked && !address) { $("report-error").textContent = T.need_position; return; }
    var fd = new FormData();
    fd.append("category", $("category").value);
    fd.append("description", $("description").value);
    fd.append("device_id", device);
    fd.append("lang", C.lang);
    if ($("phone").value.trim()) fd.append("phone", $("phone").value.trim());
    if (picked) {
      fd.append("lon", picked.lng);
      fd.append("lat", picked.lat);
      fd.append("crs", C.tile_crs);  // the map's own coordinates: WGS-84, or GCJ-02 on Amap-style tiles
    } else {
      fd.append("address", address);
    }
    photos.forEach(function (p, i) { fd.append("photos", p, "photo" + (i + 1) + ".jpg"); });
    $("submit").disabled = true;
    $("submit").textContent = T.sending;
    $("report-error").textContent = "";
    fetch(api("/public/reports"), { method: "POST", body: fd }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      $("submit").disabled = false;
      $("submit").textContent = T.submit;
      if (!res.ok) { $("report-error").textContent = errorText(res.body); return; }
      remember(res.body.ticket, res.body.token);
      showDone(res.body);
    }).catch(function () { $("submit").disabled = false; $("submit").textContent = T.submit; });
  });

  function showDone(b) {
    $("report").classList.add("hidden");
    var d = $("done");
    d.classList.remove("hidden");
    d.innerHTML = "";
    var box = el("div", "ok");
    box.appendChild(el("h2", "", T.received));
    box.appendChild(el("p", "", b.notice));
    box.appendChild(el("p", "", T.keep));
    box.appendChild(el("div", "ticket", T.ticket + " " + b.ticket)).id = "done-ticket";
    box.appendChild(el("div", "", T.token + " " + b.token)).id = "done-token";
    d.appendChild(box);
    var view = el("button", "btn light", T.find);
    view.type = "button";
    view.onclick = function () { showTab("find"); $("find-ticket").value = b.ticket; $("find-token").value = b.token; lookUp(); };
    d.appendChild(view);
    var again = el("button", "btn", T.again);
    again.type = "button";
    again.onclick = function () { location.reload(); };
    d.appendChild(again);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The tickets sent from this phone, so that a resident need not copy the code anywhere.
  function remember(ticket, token) {
    var mine = JSON.parse(localStorage.getItem("gridmap.tickets") || "[]");
    mine.unshift({ ticket: ticket, token: token });
    localStorage.setItem("gridmap.tickets", JSON.stringify(mine.slice(0, 20)));
  }
  function listMine() {
    var mine = JSON.parse(localStorage.getItem("gridmap.tickets") || "[]");
    var box = $("mine");
    box.innerHTML = "";
    if (!mine.length) return;
    box.appendChild(el("p", "hint", T.mine));
    mine.forEach(function (m) {
      var b = el("button", "btn light", m.ticket);
      b.type = "button";
      b.onclick = function () { $("find-ticket").value = m.ticket; $("find-token").value = m.token; lookUp(); };
      box.appendChild(b);
    });
  }

  function lookUp(message) {
    var ticket = $("find-ticket").value.trim(), token = $("find-token").value.trim();
    if (!ticket || !token) { $("find-error").textContent = T.need_ticket; return; }
    $("find-error").textContent = typeof message === "string" ? message : "";
    fetch(api("/public/reports/" + encodeURIComponent(ticket)), { headers: { "X-Ticket-Token": token } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { $("find-error").textContent = errorText(res.body); $("view").classList.add("hidden"); return; }
        showView(res.body, token);
      });
  }
  $("find").addEventListener("click", function () { lookUp(); });

  function showView(v, token) {
    var box = $("view");
    box.classList.remove("hidden");
    box.innerHTML = "";
    box.appendChild(el("div", "ticket", T.ticket + " " + v.ticket));
    box.appendChild(el("p", "", T.status + "：" + v.status_text));
    if (v.unit) box.appendChild(el("p", "", T.unit + "：" + v.unit));
    var ol = el("ol", "timeline");
    v.timeline.forEach(function (s) {
      var li = el("li");
      li.dataset.step = s.step;
      li.appendChild(el("time", "", new Date(s.at).toLocaleString(C.lang === "en" ? "en-GB" : "zh-CN")));
      li.appendChild(el("span", "", s.text));
      ol.appendChild(li);
    });
    box.appendChild(ol);
    if (v.rating) box.appendChild(el("p", "", T.rated + T[v.rating]));
    if (v.can_rate) {
      box.appendChild(el("p", "", T.rate));
      var row = el("div", "row rate");
      ["satisfied", "basically_satisfied", "dissatisfied"].forEach(function (r) {
        var b = el("button", "", T[r]);
        b.type = "button";
        b.dataset.rating = r;
        b.onclick = function () { rate(v.ticket, token, r); };
        row.appendChild(b);
      });
      box.appendChild(row);
    }
  }

  function rate(ticket, token, rating) {
    fetch(api("/public/reports/" + encodeURIComponent(ticket) + "/rating"), {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Ticket-Token": token },
      body: JSON.stringify({ rating: rating })
    }).then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        lookUp(res.ok ? T.thanks : errorText(res.body));
      });
  }

  function showTab(which) {
    $("page-new").classList.toggle("hidden", which !== "new");
    $("page-find").classList.toggle("hidden", which !== "find");
    $("tab-new").classList.toggle("on", which === "new");
    $("tab-find").classList.toggle("on", which === "find");
    if (which === "find") listMine(); else map.invalidateSize();
  }
  $("tab-new").addEventListener("click", function () { showTab("new"); });
  $("tab-find").addEventListener("click", function () { showTab("find"); });
  if (location.hash === "#find") showTab("find");
})();
