import { formatDate, debounce } from './util.js';

const state = { items: [], filter: '' };

export function render(root) {
  const visible = state.items.filter((item) => item.title.includes(state.filter));
  root.innerHTML = visible
    .map((item) => `<li data-id="${item.id}">${item.title} <time>${formatDate(item.created)}</time></li>`)
    .join('');
}

export function bindSearch(input, root) {
  input.addEventListener('input', debounce((event) => {
    state.filter = event.target.value;
    render(root);
  }, 150));
}
