// Preloaded with `node -r` so a server that listens on all interfaces (server-everything)
// listens on 127.0.0.1 only: every net.Server listen call gets the loopback host.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args.length > 0 && typeof args[0] === "object" && args[0] !== null) {
    args[0] = Object.assign({}, args[0], { host: "127.0.0.1" });
  } else if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    const port = Number(args.shift());
    if (typeof args[0] === "string") args.shift(); // a host the caller chose
    args.unshift(port, "127.0.0.1");
  }
  return listen.apply(this, args);
};
