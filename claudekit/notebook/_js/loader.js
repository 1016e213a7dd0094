// The module every claudekit view carries (a few hundred bytes): the front end itself (view.js with
// marked, ~62 KB, and view.css) travels once per kernel, as the state of one shared model whose id is
// this widget's `lib`. It is imported once per page and version; its CSS goes in the page's head once.
const loaded = (globalThis.__claudekitFrontEnd ??= new Map()); // version -> Promise of the module

function load(model) {
  return model.widget_manager.get_model(model.get("lib")).then((lib) => {
    const version = lib.get("version");
    let module = loaded.get(version);
    if (!module) {
      const url = URL.createObjectURL(new Blob([lib.get("code")], { type: "text/javascript" }));
      module = import(/* webpackIgnore: true */ /* @vite-ignore */ url).finally(() => URL.revokeObjectURL(url));
      loaded.set(version, module);
      let style = document.getElementById("claudekit-view-css");
      if (!style) {
        style = document.createElement("style");
        style.id = "claudekit-view-css";
        document.head.appendChild(style);
      }
      if (style.dataset.version !== version) {
        style.textContent = lib.get("css");
        style.dataset.version = version;
      }
    }
    return module.then((m) => m.default);
  });
}

export default {
  async initialize(ctx) {
    return (await load(ctx.model)).initialize(ctx);
  },
  async render(ctx) {
    return (await load(ctx.model)).render(ctx);
  },
};
