// Forms generated from the JSON Schema zod emits for hub method arguments,
// with the same constraints checked in the page before anything is sent.
// Plain browser JavaScript: this file is served as is.

let nextId = 0
const uid = (prefix) => `${prefix}-${++nextId}`

function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (key === 'class') node.className = value
    else if (key === 'text') node.textContent = value
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else node.setAttribute(key, value === true ? '' : value)
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child)
  return node
}
export { el }

/** Follows a local `$ref` ("#" or "#/$defs/Name") against the argument's root schema. */
function deref (schema, root) {
  let s = schema
  for (let i = 0; i < 8 && s && typeof s.$ref === 'string'; i++) {
    const ref = s.$ref
    if (ref === '#') s = root
    else if (ref.startsWith('#/')) s = ref.slice(2).split('/').reduce((node, key) => node?.[key], root)
    else return {}
  }
  return s ?? {}
}

const isNullSchema = (s) => s && (s.type === 'null' || (Array.isArray(s.enum) && s.enum.length === 1 && s.enum[0] === null))

/** Splits `nullable` off a schema: zod writes it as a type list, an anyOf with null, or null in an enum. */
export function analyse (schema, root = schema) {
  let s = deref(schema, root)
  let nullable = false
  if (Array.isArray(s.anyOf) && !s.type) {
    const others = s.anyOf.filter((member) => !isNullSchema(deref(member, root)))
    if (others.length < s.anyOf.length) nullable = true
    if (others.length === 1) s = { ...deref(others[0], root), description: s.description ?? others[0].description }
    else s = { ...s, anyOf: others }
  }
  let types = Array.isArray(s.type) ? s.type : (s.type ? [s.type] : [])
  if (types.includes('null')) {
    nullable = true
    types = types.filter((t) => t !== 'null')
    s = { ...s, type: types.length === 1 ? types[0] : types }
  }
  if (Array.isArray(s.enum) && s.enum.includes(null)) {
    nullable = true
    s = { ...s, enum: s.enum.filter((v) => v !== null) }
  }
  let kind = 'json'
  if (s['x-signalr-kind'] === 'date' || s['x-signalr-kind'] === 'binary') kind = s['x-signalr-kind']
  else if ('const' in s) kind = 'const'
  else if (Array.isArray(s.enum)) kind = 'enum'
  else if (types.length === 1 && !s.anyOf) {
    const t = types[0]
    if (t === 'string' || t === 'boolean') kind = t
    else if (t === 'number' || t === 'integer') kind = 'number'
    else if (t === 'array' && !s.prefixItems && s.items && typeof s.items === 'object') kind = 'array'
    else if (t === 'object' && s.properties && (s.additionalProperties === undefined || s.additionalProperties === false)) kind = 'object'
  }
  return { schema: s, kind, nullable }
}

function describeValue (value) {
  return JSON.stringify(value)
}

/** Human words for the constraints of one schema (shown next to its field). */
export function constraintText (schema, kind) {
  const s = schema
  const parts = []
  const type = Array.isArray(s.type) ? s.type.join(' | ') : s.type
  if (kind === 'date') parts.push('date and time, in your time zone')
  else if (kind === 'binary') parts.push('bytes, as base64')
  else if (kind === 'json') parts.push(type ? `${type} as JSON` : 'any JSON value')
  else if (kind === 'enum') parts.push(`one of ${s.enum.map(describeValue).join(', ')}`)
  else if (kind === 'const') parts.push(`exactly ${describeValue(s.const)}`)
  else if (type) parts.push(type)
  if (s.format && kind !== 'date') parts.push(s.format)
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`
  if (s.minLength !== undefined && s.minLength === s.maxLength) parts.push(`exactly ${plural(s.minLength, 'character')}`)
  else {
    if (s.minLength !== undefined) parts.push(`at least ${plural(s.minLength, 'character')}`)
    if (s.maxLength !== undefined) parts.push(`at most ${plural(s.maxLength, 'character')}`)
  }
  if (s.pattern !== undefined && !s.format) parts.push(`matches /${s.pattern}/`)
  const safe = (n) => Math.abs(n) < Number.MAX_SAFE_INTEGER
  if (s.minimum !== undefined && safe(s.minimum)) parts.push(`≥ ${s.minimum}`)
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`)
  if (s.maximum !== undefined && safe(s.maximum)) parts.push(`≤ ${s.maximum}`)
  if (s.exclusiveMaximum !== undefined) parts.push(`< ${s.exclusiveMaximum}`)
  if (s.multipleOf !== undefined) parts.push(`multiple of ${s.multipleOf}`)
  if (s.minItems !== undefined) parts.push(`at least ${plural(s.minItems, 'item')}`)
  if (s.maxItems !== undefined) parts.push(`at most ${plural(s.maxItems, 'item')}`)
  if (s.description) parts.push(`— ${s.description}`)
  return parts.join(' · ')
}

const typeOfValue = (v) => v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v

function typeMatches (type, v) {
  if (type === 'integer') return Number.isInteger(v)
  if (type === 'number') return typeof v === 'number' && Number.isFinite(v)
  return typeOfValue(v) === type
}

/**
 * Checks a value against the JSON Schema keywords zod emits. Returns messages,
 * each prefixed with its path inside the value; empty when the value is good.
 */
export function validate (schema, value, root = schema, path = '') {
  const s = deref(schema, root)
  const at = path === '' ? '' : `${path}: `
  const errors = []
  if (Array.isArray(s.anyOf)) {
    const ok = s.anyOf.some((member) => validate(member, value, root, path).length === 0)
    if (!ok) errors.push(`${at}matches none of the allowed shapes`)
    return errors
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type]
    if (!types.some((t) => typeMatches(t, value))) {
      errors.push(`${at}expected ${types.join(' or ')}, got ${typeOfValue(value)}`)
      return errors
    }
  }
  if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(value)) errors.push(`${at}must be ${describeValue(s.const)}`)
  if (Array.isArray(s.enum) && !s.enum.some((v) => JSON.stringify(v) === JSON.stringify(value))) {
    errors.push(`${at}must be one of ${s.enum.map(describeValue).join(', ')}`)
  }
  if (typeof value === 'string') {
    const length = [...value].length
    if (s.minLength !== undefined && length < s.minLength) errors.push(`${at}must have at least ${s.minLength} character${s.minLength === 1 ? '' : 's'}`)
    if (s.maxLength !== undefined && length > s.maxLength) errors.push(`${at}must have at most ${s.maxLength} characters`)
    if (s.pattern !== undefined) {
      let re = null
      try { re = new RegExp(s.pattern, 'u') } catch { try { re = new RegExp(s.pattern) } catch { re = null } }
      if (re !== null && !re.test(value)) errors.push(`${at}must be ${s.format ? `a valid ${s.format}` : `match /${s.pattern}/`}`)
    }
  }
  if (typeof value === 'number') {
    if (s.minimum !== undefined && value < s.minimum) errors.push(`${at}must be ≥ ${s.minimum}`)
    if (s.maximum !== undefined && value > s.maximum) errors.push(`${at}must be ≤ ${s.maximum}`)
    if (s.exclusiveMinimum !== undefined && value <= s.exclusiveMinimum) errors.push(`${at}must be > ${s.exclusiveMinimum}`)
    if (s.exclusiveMaximum !== undefined && value >= s.exclusiveMaximum) errors.push(`${at}must be < ${s.exclusiveMaximum}`)
    if (s.multipleOf !== undefined && Math.abs(value / s.multipleOf - Math.round(value / s.multipleOf)) > 1e-9) errors.push(`${at}must be a multiple of ${s.multipleOf}`)
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems) errors.push(`${at}must have at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}`)
    if (s.maxItems !== undefined && value.length > s.maxItems) errors.push(`${at}must have at most ${s.maxItems} items`)
    value.forEach((item, i) => {
      const itemSchema = Array.isArray(s.prefixItems) && i < s.prefixItems.length ? s.prefixItems[i] : s.items
      if (itemSchema === false) errors.push(`${path}[${i}]: no item allowed here`)
      else if (itemSchema && typeof itemSchema === 'object') errors.push(...validate(itemSchema, item, root, `${path}[${i}]`))
    })
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const key of s.required ?? []) if (!(key in value)) errors.push(`${path ? `${path}.` : ''}${key}: is required`)
    for (const [key, item] of Object.entries(value)) {
      const propertySchema = s.properties?.[key] ?? s.additionalProperties
      const where = path ? `${path}.${key}` : key
      if (propertySchema === false) errors.push(`${where}: is not allowed`)
      else if (propertySchema && typeof propertySchema === 'object') errors.push(...validate(propertySchema, item, root, where))
    }
  }
  return errors
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export function base64ToBytes (text) {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

export function bytesToBase64 (bytes) {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/** Bytes from a base64 field; sent as bytes with MessagePack and as base64 text with JSON. */
export class Bytes {
  constructor (data) { this.data = data }
}

/** A value that is not there: an omitted optional argument or property. */
export const OMITTED = Symbol('omitted')

/**
 * One form field for `schema`. `read()` returns `{ value, errors }`; `value`
 * is what goes to the hub (Date for dates, a Bytes marker for binary, OMITTED
 * for an optional field left out). Errors are also shown next to the field.
 */
export function createField (schema, options) {
  const { label, root = schema, optional = false, depth = 0 } = options
  const { schema: s, kind: rawKind, nullable } = analyse(schema, root)
  const kind = depth > 6 && (rawKind === 'object' || rawKind === 'array') ? 'json' : rawKind
  const id = uid('f')
  const hintId = `${id}-hint`
  const errorId = `${id}-error`
  const hint = el('small', { class: 'hint', id: hintId, text: constraintText(s, kind) + (optional ? ' · optional' : '') + (nullable ? ' · nullable' : '') })
  const error = el('small', { class: 'field-error', id: errorId, role: 'alert', hidden: true })
  const describedBy = `${hintId} ${errorId}`
  const wrapper = el('div', { class: `field field-${kind}` })
  let input = null
  let readOwn
  let focusTarget = null

  const labelled = (control) => {
    control.id = id
    control.setAttribute('aria-describedby', describedBy)
    focusTarget = control
    return control
  }

  switch (kind) {
    case 'string':
    case 'binary': {
      const long = kind === 'binary' || (s.maxLength ?? Infinity) > 200
      input = labelled(long ? el('textarea', { rows: 2, spellcheck: 'false' }) : el('input', { type: 'text', spellcheck: 'false', autocomplete: 'off' }))
      if (kind === 'binary') input.placeholder = 'base64, e.g. AQID'
      readOwn = () => {
        if (kind === 'string') return { value: input.value }
        const text = input.value.replace(/\s+/g, '')
        if (!BASE64.test(text)) return { errors: ['must be base64 (A–Z, a–z, 0–9, +, /, = padding)'] }
        return { value: new Bytes(base64ToBytes(text)) }
      }
      break
    }
    case 'number':
      input = labelled(el('input', { type: 'number', step: s.type === 'integer' ? '1' : 'any', inputmode: s.type === 'integer' ? 'numeric' : 'decimal' }))
      readOwn = () => {
        if (input.value.trim() === '') return { errors: ['a number is required'] }
        const n = Number(input.value)
        return Number.isNaN(n) ? { errors: ['must be a number'] } : { value: n }
      }
      break
    case 'boolean':
      input = labelled(el('input', { type: 'checkbox' }))
      readOwn = () => ({ value: input.checked })
      break
    case 'enum':
      input = labelled(el('select', {}, ...s.enum.map((v, i) => el('option', { value: String(i), text: typeof v === 'string' ? v : JSON.stringify(v) }))))
      readOwn = () => ({ value: s.enum[Number(input.value)] })
      break
    case 'const':
      input = labelled(el('output', { text: JSON.stringify(s.const) }))
      readOwn = () => ({ value: s.const })
      break
    case 'date':
      input = labelled(el('input', { type: 'datetime-local', step: '1' }))
      readOwn = () => {
        const date = new Date(input.value)
        return input.value === '' || Number.isNaN(date.getTime()) ? { errors: ['a date and time is required'] } : { value: date }
      }
      break
    case 'array': {
      const list = el('ol', { class: 'items' })
      const items = []
      const add = () => {
        const item = createField(s.items, { label: `Item ${items.length + 1}`, root, depth: depth + 1 })
        const entry = { item, node: null }
        const remove = el('button', {
          type: 'button',
          class: 'small',
          text: 'Remove',
          'aria-label': `Remove item from ${label}`,
          onclick: () => { items.splice(items.indexOf(entry), 1); entry.node.remove(); renumber() }
        })
        entry.node = el('li', {}, item.element, remove)
        items.push(entry)
        list.append(entry.node)
        return item
      }
      const renumber = () => items.forEach((entry, i) => entry.item.setLabel(`Item ${i + 1}`))
      for (let i = 0; i < (s.minItems ?? 0) && i < 20; i++) add()
      const addButton = el('button', { type: 'button', class: 'small', text: 'Add item', 'aria-label': `Add item to ${label}`, onclick: () => add().focus() })
      input = el('div', { class: 'array' }, list, addButton)
      focusTarget = addButton
      readOwn = () => {
        const values = []
        const errors = []
        for (const { item } of items) {
          const result = item.read()
          if (result.errors.length > 0) errors.push('')
          else values.push(result.value === OMITTED ? null : result.value)
        }
        return errors.length > 0 ? { errors, nested: true } : { value: values }
      }
      wrapper.addItem = add
      break
    }
    case 'object': {
      const required = new Set(s.required ?? [])
      const children = Object.entries(s.properties).map(([key, propertySchema]) =>
        [key, createField(propertySchema, { label: key, root, optional: !required.has(key), depth: depth + 1 })])
      input = el('div', { class: 'object' }, ...children.map(([, child]) => child.element))
      focusTarget = children[0]?.[1]
      readOwn = () => {
        const value = {}
        let failed = false
        for (const [key, child] of children) {
          const result = child.read()
          if (result.errors.length > 0) failed = true
          else if (result.value !== OMITTED) value[key] = result.value
        }
        return failed ? { errors: [''], nested: true } : { value }
      }
      break
    }
    default:
      input = labelled(el('textarea', { rows: 2, spellcheck: 'false', placeholder: 'JSON, e.g. {"a": 1}' }))
      readOwn = () => {
        try {
          return { value: JSON.parse(input.value) }
        } catch {
          return { errors: ['must be valid JSON'] }
        }
      }
  }

  // Optional and nullable fields get a mode: a value, null, or left out.
  let mode = null
  if (optional || nullable) {
    mode = el('select', { class: 'mode', 'aria-label': `${label}: value, null or omitted` },
      el('option', { value: 'value', text: 'value' }),
      nullable ? el('option', { value: 'null', text: 'null' }) : null,
      optional ? el('option', { value: 'omit', text: 'omitted' }) : null)
    mode.value = optional ? 'omit' : 'value'
    const sync = () => { input.classList.toggle('inactive', mode.value !== 'value') }
    mode.addEventListener('change', sync)
    sync()
  }

  const structured = kind === 'array' || kind === 'object'
  const title = structured
    ? el('legend', { text: label })
    : el('label', { for: id, text: label })
  const head = el('div', { class: 'field-head' }, title, mode)
  const body = structured
    ? el('fieldset', { 'aria-describedby': describedBy }, head, hint, input, error)
    : el('div', {}, head, input, hint, error)
  wrapper.append(body)
  if (input && !structured) input.addEventListener('input', () => { if (!error.hidden) showErrors([]) })

  function showErrors (messages) {
    const own = messages.filter((m) => m !== '')
    error.hidden = own.length === 0
    error.textContent = own.join('; ')
    const target = focusTarget instanceof HTMLElement ? focusTarget : null
    if (target && !structured) target.setAttribute('aria-invalid', own.length > 0 ? 'true' : 'false')
  }

  return {
    element: wrapper,
    kind,
    setLabel (text) { title.textContent = text },
    focus () { (focusTarget?.focus ? focusTarget : wrapper).focus?.() },
    /** Sets a plain value (used by tests of the page and "Add item"). */
    input,
    read () {
      if (mode !== null && mode.value === 'omit') { showErrors([]); return { value: OMITTED, errors: [] } }
      if (mode !== null && mode.value === 'null') { showErrors([]); return { value: null, errors: [] } }
      const own = readOwn()
      if (own.errors) { showErrors(own.errors); return { errors: own.errors } }
      // Dates and bytes are checked as the strings they travel as.
      const checked = kind === 'date' ? own.value.toISOString() : kind === 'binary' ? bytesToBase64(own.value.data) : own.value
      const messages = structured ? lengthErrors(s, checked) : validate(s, checked, root)
      showErrors(messages)
      return messages.length > 0 ? { errors: messages } : { value: own.value, errors: [] }
    }
  }
}

function lengthErrors (schema, value) {
  if (!Array.isArray(value)) return []
  return validate({ minItems: schema.minItems, maxItems: schema.maxItems }, value)
}
