/* partnerd: PartnerStackJS-compatible snippet. ES5, no third-party requests. */
(function (w, d) {
  if (w.growsumo && w.growsumo._partnerd) { return; }
  var base = "__PARTNERD_BASE__", pk = "", started = false;
  var keyRe = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/, xidRe = /^[A-Za-z0-9]{6,64}$/;
  function param(n) {
    var m = new RegExp("[?&]" + n + "=([^&#]*)").exec(w.location.search);
    try { return m ? decodeURIComponent(m[1].replace(/\+/g, " ")) : ""; } catch (e) { return ""; }
  }
  function unb64(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
    while (s.length % 4) { s += "="; }
    try { return w.atob(s); } catch (e) { return ""; }
  }
  function getc(n) {
    var m = new RegExp("(?:^|; )" + n + "=([^;]*)").exec(d.cookie);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function setc(n, v, age) {
    var h = w.location.hostname, parts = h.split("."), i, c = n + "=" + encodeURIComponent(v) + "; path=/; max-age=" + age + "; samesite=lax";
    if (/^[0-9.]+$/.test(h) || h.indexOf(":") >= 0 || parts.length < 2) { d.cookie = c; return; }
    /* the registrable domain is the shortest suffix that takes a cookie */
    for (i = parts.length - 2; i >= 0; i--) {
      d.cookie = c + "; domain=" + parts.slice(i).join(".");
      if (getc(n) === (age > 0 ? v : "")) { return; }
    }
  }
  function xhr(method, path, body, cb) {
    var r = new XMLHttpRequest();
    r.open(method, base + path, true);
    if (body) { r.setRequestHeader("Content-Type", "text/plain"); }
    r.onreadystatechange = function () {
      if (r.readyState !== 4) { return; }
      var j = null;
      try { j = JSON.parse(r.responseText); } catch (e) {}
      cb(j, r.status);
    };
    r.send(body ? JSON.stringify(body) : null);
  }
  var g = {
    _partnerd: true,
    data: { name: "", email: "", customer_key: "", partner_key: getc("growSumoPartnerKey") || getc("ps_partner_key"), xid: getc("ps_xid") || getc("gsxid") },
    _initialize: function (key) {
      pk = key;
      if (started) { return; }
      started = true;
      var k = unb64(param("ps_partner_key") || param("gspk")), x = param("ps_xid") || param("gsxid");
      if (keyRe.test(k)) {
        if (!xidRe.test(x)) { x = ""; }
        g.data.partner_key = g.data.ps_partner_key = k;
        g.data.xid = x;
        /* last click wins: the new click replaces the old one, for the company's window */
        xhr("GET", "/js/config?public_key=" + encodeURIComponent(pk), null, function (j) {
          var age = (j && j.data && j.data.attribution_days || 90) * 86400;
          setc("growSumoPartnerKey", k, age);
          setc("ps_partner_key", k, age);
          setc("ps_xid", x, x ? age : 0);
          setc("gsxid", x, x ? age : 0);
        });
      }
      var f = w.growsumoInit;
      if (typeof f === "function") {
        w.growsumoInit = function () {}; /* the install snippet calls it again: run the page's once */
        f();
      }
    },
    createSignup: function (cb) {
      var x = g.data;
      xhr("POST", "/js/signup", { public_key: pk, name: x.name || "", email: x.email || "", customer_key: x.customer_key || "",
        partner_key: x.partner_key || x.ps_partner_key || "", xid: x.xid || "" }, function (j, st) {
        if (typeof cb === "function") { cb(j, st); }
      });
    }
  };
  w.growsumo = w.partnerstack = g;
})(window, document);
