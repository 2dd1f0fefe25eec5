// Conversations: the tenant's conversations (newest update first, by tag), one opened with its messages a page at
// a time, and full-text search (GET /v1/conversations:search) whose snippets mark the matched tokens.

const PAGE = 50; // conversations, search hits and messages per page

/** A snippet with its highlights ([start, end) in code points) as text nodes and <mark>s: never HTML. */
export function marked(h, snippet, highlights) {
  const chars = Array.from(snippet), out = [];
  let at = 0;
  for (const [start, end] of highlights) {
    out.push(chars.slice(at, start).join(""), h("mark", null, chars.slice(start, end).join("")));
    at = end;
  }
  out.push(chars.slice(at).join(""));
  return out.filter((part) => part !== "");
}

export default {
  id: "conversations", title: "Conversations", hotkey: "v", scopes: ["read"],
  mount(el, ctx) {
    const {h, fill, fmt, params} = ctx;
    const selected = params.id || null, query = params.q || "", tag = params.tag || "";
    let cursor = null, messageCursor = null;

    const link = (changes) => {
      const q = new URLSearchParams({...params, ...changes});
      for (const [k, v] of [...q]) if (!v) q.delete(k);
      return `#/conversations?${q}`;
    };
    const box = h("input", {type: "search", "data-filter": true, name: "q", value: query, placeholder: "search messages  (/)",
                            "aria-label": "Search the messages"});
    const tags = h("select", {id: "tag", "aria-label": "Tag", onchange: () => ctx.go(link({tag: tags.value, q: "", id: ""}))},
      h("option", {value: ""}, "any tag"), tag ? h("option", {value: tag, selected: true}, tag) : null);
    const search = h("form", {class: "bar", role: "search", onsubmit: (e) => {
      e.preventDefault();
      ctx.go(link({q: box.value.trim(), id: "", tag: ""})); // a search spans every conversation, whatever the tag
    }}, box, h("button", {type: "submit"}, "Search"), query ? h("a", {href: link({q: ""})}, "clear") : null, tags);
    const list = h("ol", {class: "list conversations", id: "conversations"});
    const more = h("p");
    const detail = h("div", {class: "detail", id: "conversation"});
    fill(el, h("div", {class: "columns halves"},
      h("div", {class: "pane"}, h("div", {class: "bar"}, h("h2", null, query ? `Search: ${query}` : "Conversations")), search,
        list, more),
      detail));

    const title = (c) => c.title || h("span", {class: "note"}, `untitled ${c.id}`);

    function hitItem(hit) {
      return h("li", {"data-conversation": hit.id, "aria-selected": hit.id === selected ? "true" : null},
        h("a", {href: link({id: hit.id})}, title(hit)),
        h("span", {class: "count"}, ` ${hit.message_count} messages · ${fmt.ago(hit.updated_at)}`),
        h("p", {class: "snippet"}, marked(h, hit.snippet, hit.highlights)));
    }

    function conversationItem(c) {
      return h("li", {"data-conversation": c.id, "aria-selected": c.id === selected ? "true" : null},
        h("a", {href: link({id: c.id})}, title(c)),
        h("span", {class: "count"}, ` ${c.message_count} messages · ${fmt.ago(c.updated_at)}`),
        c.tags.length ? h("span", {class: "tags"}, c.tags.map((t) => h("span", {class: "badge"}, t))) : null);
    }

    async function page() {
      try {
        const got = query
          ? await ctx.api("/v1/conversations:search", {query: {q: query, limit: PAGE, cursor}})
          : await ctx.api("/v1/conversations", {query: {limit: PAGE, cursor, tag}});
        const items = query ? got.hits.map(hitItem) : got.conversations.map(conversationItem);
        if (!cursor) fill(list, items.length ? items : h("li", {class: "note"}, query ? "No conversation matches." : "No conversations."));
        else list.append(...items);
        cursor = got.next_cursor;
        fill(more, cursor ? h("button", {type: "button", id: "more-conversations", onclick: page}, "Load more") : "");
      } catch (err) {
        fill(list, h("li", {class: "error"}, err.message));
      }
    }

    function message(m) {
      return h("li", {"data-position": m.position, "data-role": m.role, class: `message ${m.role}`},
        h("div", {class: "meta"}, h("span", {class: "badge"}, m.role), ` #${m.position} · `,
          h("time", {datetime: m.created_at, title: fmt.time(m.created_at)}, fmt.ago(m.created_at)),
          m.model ? ` · ${m.model}` : "", m.token_count ? ` · ${m.token_count} tokens` : "",
          m.status === "error" ? h("span", {class: "badge failed"}, "error") : null),
        h("div", {class: "content"}, m.content));
    }

    async function messages(into, moreBox) {
      try {
        const got = await ctx.api(`/v1/conversations/${encodeURIComponent(selected)}/messages`,
                                  {query: {limit: PAGE, cursor: messageCursor}});
        into.append(...got.messages.map(message));
        messageCursor = got.next_cursor;
        fill(moreBox, messageCursor ? h("button", {type: "button", id: "more-messages", onclick: () => messages(into, moreBox)},
                                         "More messages") : "");
      } catch (err) {
        fill(moreBox, h("span", {class: "error"}, err.message));
      }
    }

    async function open() {
      if (!selected) return;
      try {
        const c = await ctx.api(`/v1/conversations/${encodeURIComponent(selected)}`, {query: {messages: false}});
        const into = h("ol", {class: "messages", id: "messages"}), moreBox = h("p");
        fill(detail,
          h("h2", null, title(c)),
          h("p", {class: "note"}, `${c.message_count} messages · ${c.token_count} tokens · updated ${fmt.time(c.updated_at)}`,
            c.external_id ? ` · external id ${c.external_id}` : "", " · ", h("code", null, c.id)),
          c.tags.length ? h("p", {class: "tags"}, c.tags.map((t) => h("a", {class: "badge", href: link({tag: t, q: "", id: ""})}, t))) : null,
          c.metadata ? h("pre", {class: "json", "aria-label": "metadata"}, fmt.json(c.metadata)) : null,
          into, moreBox);
        if (!c.message_count) into.append(h("li", {class: "note"}, "No messages."));
        else await messages(into, moreBox);
      } catch (err) {
        fill(detail, h("p", {class: "error"}, err.status === 404 ? "No such conversation." : err.message));
      }
    }

    ctx.api("/v1/conversations:tags").then(({tags: all}) => {
      fill(tags, h("option", {value: ""}, "any tag"), all.map((t) => h("option", {value: t, selected: t === tag}, t)));
    }, (err) => ctx.status(err.message));
    page();
    open();
    return () => {};
  },
};
