#!/usr/bin/python3
"""Held-out test set generator for the newcomer person-record matcher.

Independent of the matcher: name pools, transliteration rules and pair
construction are written from scratch.  Standard library only; deterministic
(seed below).  Writes names-heldout.tsv next to this file.

Every name is stored once in a canonical form (scholarly transliteration,
native orthography or native script); every spelling that appears in the output
is produced from it by rules (romanisation systems, script conversion,
German register spellings, article handling, typos).  Birth-place exonyms are
hand lists (there is no rule for Belgrad/Belgrade).

Names whose generated spellings collide with any name token of
../shared/data/names-sample.tsv or names-train.tsv are dropped.
"""
import csv
import os
import random
import sys
import unicodedata

SEED = 20240611
N_PAIRS = 1500
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'names-heldout.tsv')
SHARED = [os.path.join(HERE, '..', '..', '..', '..', '..', 'shared', 'data', name)
          for name in ('names-sample.tsv', 'names-train.tsv')]
HEADER = ['pair_id', 'label', 'kind', 'a_given', 'a_family', 'a_birth_date', 'a_birth_place',
          'a_nationality', 'a_sex', 'b_given', 'b_family', 'b_birth_date', 'b_birth_place',
          'b_nationality', 'b_sex']
# proportions of kinds in names-train.tsv (1613/478/323/409/92 of 2915)
KIND_SHARE = [('same', 1613), ('namesake', 478), ('sibling', 323), ('placeholder', 409), ('other', 92)]


def wpick(rng, items):
    """items: list of (value, weight)"""
    tot = sum(w for _, w in items)
    x = rng.random() * tot
    for v, w in items:
        x -= w
        if x < 0:
            return v
    return items[-1][0]


def strip_marks(s):
    return ''.join(c for c in unicodedata.normalize('NFKD', s) if not unicodedata.combining(c))


def is_latin(s):
    return all(not ch.isalpha() or 'LATIN' in unicodedata.name(ch, '') for ch in s)


def cap(word):
    """Capitalise each part of a name (after space/hyphen/apostrophe-less)."""
    out = []
    up = True
    for ch in word:
        if up and ch.isalpha():
            out.append(ch.upper())
            up = False
        else:
            out.append(ch)
        if ch in ' -':
            up = True
    return ''.join(out)


# ---------------------------------------------------------------------------
# Arabic / Persian engine: canonical scholarly transliteration
#   consonants: ʾ b p t th ṯ j ch ḥ kh d dh ḏ r z ž s sh ṣ ḍ ṭ ẓ ʿ gh f q k g l m n h w v y
#   vowels: a i u e o (short), ā ī ū (long), @ = tā' marbūṭa, à = alif maqṣūra
#   "al-" article, "|" syllable break, "+" compound break, "ullāh" handled.
# ---------------------------------------------------------------------------
DIGRAPHS = ['th', 'kh', 'dh', 'sh', 'gh', 'ch', 'zh']
VOWELS_AP = set('aiueoāīūà@')
SUN = {'t', 'th', 'd', 'dh', 'r', 'z', 's', 'sh', 'ṣ', 'ḍ', 'ṭ', 'ẓ', 'l', 'n'}


def ap_tokens(word):
    toks = []
    i = 0
    while i < len(word):
        if word[i] == '|':
            i += 1
            continue
        two = word[i:i + 2]
        if two in DIGRAPHS:
            toks.append(two)
            i += 2
        else:
            toks.append(word[i])
            i += 1
    return toks


AR_LET = {'ʾ': 'أ', 'b': 'ب', 't': 'ت', 'th': 'ث', 'j': 'ج', 'ḥ': 'ح', 'kh': 'خ', 'd': 'د',
          'dh': 'ذ', 'r': 'ر', 'z': 'ز', 's': 'س', 'sh': 'ش', 'ṣ': 'ص', 'ḍ': 'ض', 'ṭ': 'ط',
          'ẓ': 'ظ', 'ʿ': 'ع', 'gh': 'غ', 'f': 'ف', 'q': 'ق', 'k': 'ك', 'l': 'ل', 'm': 'م',
          'n': 'ن', 'h': 'ه', 'w': 'و', 'y': 'ي', 'g': 'ج', 'v': 'ف', 'p': 'ب', 'ch': 'تش'}
FA_LET = dict(AR_LET)
FA_LET.update({'k': 'ک', 'y': 'ی', 'p': 'پ', 'ch': 'چ', 'zh': 'ژ', 'ž': 'ژ', 'g': 'گ', 'v': 'و',
               'ṯ': 'ث', 'ḏ': 'ذ', 'ʾ': 'ئ'})


def ap_script(canon, persian, allah_sep=''):
    L = FA_LET if persian else AR_LET
    out_words = []
    for word in canon.split(' '):
        pre = ''
        if word.startswith('al-'):
            pre = 'ال'
            word = word[3:]
        if word == 'bin':
            out_words.append('بن')
            continue
        tail = ''
        for suf in ('ullāh', 'allāh', 'ollāh'):
            if word.endswith(suf):
                tail = 'الله'
                word = word[:-len(suf)]
                break
        word = word.replace('+', '')
        t = ap_tokens(word)
        res = []
        prev_cons = None
        n = len(t)
        for i, x in enumerate(t):
            first = (i == 0) or (i == 1 and t[0] == 'ʾ')
            nxt = t[i + 1] if i + 1 < n else None
            prv = t[i - 1] if i > 0 else None
            if x == 'ʾ':
                if i == 0:
                    continue  # handled by the vowel
                if persian:
                    res.append('ئ')
                elif nxt in ('i', 'ī') or prv in ('i', 'ī'):
                    res.append('ئ')
                elif nxt in ('u', 'ū') or prv in ('u', 'ū'):
                    res.append('ؤ')
                elif nxt is None:
                    res.append('ء')
                else:
                    res.append('أ')
                prev_cons = None
                continue
            if x in VOWELS_AP:
                if first:
                    if persian:
                        res.append({'ā': 'آ', 'ī': 'ای', 'ū': 'او'}.get(x, 'ا'))
                    else:
                        res.append({'a': 'أ', 'u': 'أ', 'i': 'إ', 'e': 'إ', 'o': 'أ', 'ā': 'آ',
                                    'ī': 'إي', 'ū': 'أو'}.get(x, 'ا'))
                elif x == 'ā':
                    res.append('ا')
                elif x == 'ī':
                    res.append('ی' if persian else 'ي')
                elif x == 'ū':
                    res.append('و')
                elif x == '@':
                    res.append('ه' if persian else 'ة')
                elif x == 'à':
                    res.append('ی' if persian else 'ى')
                elif x == 'e' and persian and nxt is None:
                    res.append('ه')
                prev_cons = None
                continue
            # consonant
            if x == prev_cons:
                continue  # gemination not written
            if x == 'w' and prv == 'ū' or x == 'y' and prv == 'ī':
                # ūw / īy : one letter
                pass
            res.append(L.get(x, x))
            prev_cons = x
        s = pre + ''.join(res)
        if tail:
            s = s + allah_sep + tail
        out_words.append(s)
    return ' '.join(out_words)


def seeded(style, key):
    return random.Random('%s|%s' % (style['seed'], key))


def ap_latin(canon, style, persian):
    """Render canonical Arabic/Persian transliteration in a Latin style."""
    r = seeded(style, canon)
    sy = style
    words = canon.split(' ')
    out = []
    i_w = 0
    while i_w < len(words):
        word = words[i_w]
        # ʿabd al-X compounds
        if word == 'ʿabd' and i_w + 1 < len(words) and words[i_w + 1].startswith('al-'):
            rest = words[i_w + 1][3:]
            restl = ap_latin_word(rest, sy, r, persian)
            form = sy['abd']
            if form == 'join':
                s = ('Abdel' if sy['lang'] in ('fr', 'eg') else 'Abdul') + restl.lower()
            elif form == 'space':
                s = ('Abdel ' if sy['lang'] in ('fr', 'eg') else 'Abdul ') + cap(restl)
            else:
                s = ('Abd el-' if sy['lang'] in ('fr', 'eg') else 'Abd al-') + cap(restl)
            out.append(cap(s) if form != 'full' else s)
            i_w += 2
            continue
        if word == 'bin':
            nxt = ap_latin_word(words[i_w + 1], sy, r, persian)
            b = sy['bin']
            if b == 'join':
                out.append('Ben' + nxt.lower())
            else:
                out.append(b + ' ' + cap(nxt))
            i_w += 2
            continue
        if word.startswith('al-'):
            rest = word[3:]
            restl = ap_latin_word(rest, sy, r, persian)
            art = sy['article']
            c0 = ap_tokens(rest)[0]
            if art == 'drop':
                out.append(cap(restl))
            elif art == 'assim' and c0 in SUN:
                lead = sy['cons'].get(c0) or {'ṣ': 's', 'ḍ': 'd', 'ṭ': 't', 'ẓ': 'z'}.get(c0, c0)
                out.append('A' + lead.lower() + '-' + cap(restl))
            elif art == 'join':
                out.append(('El' if sy['lang'] in ('fr', 'eg') else 'Al') + restl.lower())
            elif art == 'space':
                out.append(('El ' if sy['lang'] in ('fr', 'eg') else 'Al ') + cap(restl))
            else:  # hyphen
                a = 'El-' if sy['lang'] in ('fr', 'eg') else sy['al_hy']
                out.append(a + cap(restl))
            i_w += 1
            continue
        out.append(cap(ap_latin_word(word, sy, r, persian)))
        i_w += 1
    return ' '.join(out)


def ap_latin_word(word, sy, r, persian):
    # ullāh endings
    tail = ''
    for suf in ('ullāh', 'allāh', 'ollāh'):
        if word.endswith(suf):
            word = word[:-len(suf)]
            tail = sy['ullah']
            break
    join = sy['compound']
    word = word.replace('+', join)
    t = ap_tokens(word)
    res = []
    n = len(t)
    lang = sy['lang']
    afg = sy.get('afg', False)
    for i, x in enumerate(t):
        prv = t[i - 1] if i > 0 else None
        nxt = t[i + 1] if i + 1 < n else None
        initial = i == 0 or prv in (' ', '-')
        if x in (' ', '-'):
            res.append(x)
            continue
        if x == '@':
            res.append(sy['tam'])
            continue
        if x in ('ʾ', 'ʿ'):
            if initial or nxt is None:
                continue
            if lang == 'fr' and nxt in ('i', 'ī'):
                res.append('¨')  # diaeresis marker on next i
                continue
            res.append(sy['ain'])
            continue
        if x == 'a':
            if nxt == 'y' and (i + 2 >= n or t[i + 2] not in VOWELS_AP and t[i + 2] != 'y'):
                res.append(sy['ay'])
                t[i + 1] = ''
                continue
            if nxt == 'w' and (i + 2 >= n or t[i + 2] not in VOWELS_AP):
                res.append(sy['aw'])
                t[i + 1] = ''
                continue
            # a -> e (Mohammed, Ahmed) only in a non-initial, non-final syllable
            first_v = not any(y in VOWELS_AP for y in t[:i])
            res.append('e' if (not first_v and nxt is not None and r.random() < sy['a_e']) else 'a')
            continue
        if x == 'e':
            if nxt == 'y' and (i + 2 >= n or t[i + 2] not in VOWELS_AP):
                res.append(sy['ay'])
                t[i + 1] = ''
                continue
            if persian and nxt is None:
                res.append(sy['final_e'])
                continue
            res.append('i' if r.random() < sy['e_i'] else ('a' if r.random() < sy['e_a'] else 'e'))
            continue
        if x == 'o':
            if nxt == 'w' and (i + 2 >= n or t[i + 2] not in VOWELS_AP):
                res.append(sy['aw'])
                t[i + 1] = ''
                continue
            res.append('u' if r.random() < sy['o_u'] else 'o')
            continue
        if x == 'i':
            res.append('e' if r.random() < sy['i_e'] else 'i')
            continue
        if x == 'u':
            res.append('o' if r.random() < sy['u_o'] else sy['u'])
            continue
        if x == 'ā':
            res.append(sy['aa'])
            continue
        if x == 'ī':
            if persian and nxt == 'y':
                continue
            res.append(sy['ii'] if nxt is not None else 'i' if sy['ii'] == 'ie' else sy['ii'])
            continue
        if x == 'ū':
            res.append(sy['uu'])
            continue
        if x == 'à':
            res.append('a')
            continue
        if x == '':
            continue
        # consonants
        m = sy['cons'].get(x)
        if m is None:
            m = {'ḥ': 'h', 'ṣ': 's', 'ṭ': 't', 'ṯ': 's', 'ḏ': 'z'}.get(x, x)
        if x == prv and (not sy['gem'] or len(m) > 1):
            continue  # single letter, or a multi-letter rendering (dsch, sch, kh) written once
        if x == 'w' and lang == 'fr' and nxt in VOWELS_AP:
            m = 'ou'
        if x == 'y' and initial and lang == 'de':
            m = 'j'
        res.append(m)
    s = ''.join(res)
    if '¨' in s:
        s = s.replace('¨i', 'ï').replace('¨', '')
    if persian and sy.get('aei') and 'ayi' in s and s.endswith('ayi'):
        s = s[:-3] + sy['aei']
    return s + tail


def ap_style(rng, lang, country, persian):
    """Draw one office's way of writing Arabic/Persian names."""
    st = {'seed': rng.randrange(10 ** 9), 'lang': lang, 'gem': rng.random() < 0.75,
          'compound': wpick(rng, [('', 6), (' ', 2), ('-', 1)])}
    afg = country == 'AFG'
    st['afg'] = afg
    cons = {}
    if persian:
        cons['q'] = wpick(rng, [('gh', 5), ('q', 4), ('k', 1)])
        cons['gh'] = wpick(rng, [('gh', 6), ('q', 2), ('g', 1)])
        cons['ẓ'] = cons['ḍ'] = cons['ḏ'] = 'z'
        cons['ṯ'] = wpick(rng, [('s', 8), ('th', 1)])
        cons['v'] = 'w' if (afg and rng.random() < 0.7) or lang == 'de' and rng.random() < 0.5 else 'v'
        cons['kh'] = {'de': 'ch'}.get(lang, wpick(rng, [('kh', 8), ('x', 1)]))
        cons['ch'] = {'de': 'tsch', 'fr': 'tch'}.get(lang, 'ch')
        cons['sh'] = {'de': 'sch', 'fr': 'ch'}.get(lang, 'sh')
        cons['j'] = {'de': wpick(rng, [('dsch', 3), ('j', 2)]), 'fr': 'dj'}.get(lang, 'j')
        cons['zh'] = cons['ž'] = {'de': 'sch', 'fr': 'j'}.get(lang, 'zh')
        cons['y'] = 'j' if lang == 'de' and rng.random() < 0.5 else 'y'
        st.update(aa='a', ii=wpick(rng, [('i', 8), ('ee', 1)]) if lang == 'en' else 'i',
                  uu={'fr': 'ou', 'de': 'u'}.get(lang, wpick(rng, [('u', 6), ('oo', 2), ('ou', 2)])),
                  ay=wpick(rng, [('ey', 4), ('ei', 4), ('ai', 3 if afg else 1)]) if lang != 'de' else 'ei',
                  aw=wpick(rng, [('ow', 3), ('ou', 3), ('o', 1)]),
                  a_e=0.05, e_i=0.45 if afg else 0.05, e_a=0.15, o_u=0.5 if afg else 0.1,
                  i_e=0.0, u_o=0.0, u='u',
                  final_e=wpick(rng, [('a', 7), ('ah', 1), ('e', 1)]) if afg else wpick(rng, [('e', 5), ('eh', 4)]),
                  tam='', ain=wpick(rng, [('', 6), ("'", 3)]),
                  article='hyphen', al_hy='Al-', abd='join', bin='Bin',
                  ullah=wpick(rng, [('ullah', 5), ('ullah', 2), ('ollah', 2), ('ulla', 1)]) if afg else
                  wpick(rng, [('ollah', 5), ('ullah', 3), ('olah', 1)]),
                  aei=wpick(rng, [('aei', 4), ('ai', 3), ('ayi', 2), ('aee', 1)]))
        st['cons'] = cons
        return st
    # Arabic
    eg = lang == 'eg'
    if lang == 'en':
        cons.update(kh='kh', j='j', sh='sh', th=wpick(rng, [('th', 6), ('s', 1), ('t', 1)]),
                    dh=wpick(rng, [('dh', 5), ('z', 2), ('d', 1)]), q=wpick(rng, [('q', 5), ('k', 3), ('g', 2 if country in ('IRQ', 'SDN') else 0)]),
                    gh='gh', y='y', w='w')
        st.update(uu=wpick(rng, [('u', 5), ('oo', 2), ('ou', 2)]), ii=wpick(rng, [('i', 7), ('ee', 2)]),
                  ay=wpick(rng, [('ay', 3), ('ai', 3), ('ei', 2), ('ey', 2)]), aw=wpick(rng, [('aw', 4), ('ou', 2), ('au', 1)]),
                  a_e=0.1, u_o=0.35, i_e=0.1)
    elif lang == 'fr':
        cons.update(kh='kh', j='dj', sh='ch', th='t', dh='d', q=wpick(rng, [('k', 5), ('q', 3)]), gh='gh', y='y', w='w')
        st.update(uu='ou', ii='i', ay=wpick(rng, [('ai', 4), ('ei', 3)]), aw='ou', a_e=0.15, u_o=0.3, i_e=0.2)
    elif lang == 'de':
        cons.update(kh='ch', j=wpick(rng, [('dsch', 3), ('j', 2)]), sh='sch', th=wpick(rng, [('s', 2), ('t', 1), ('th', 1)]),
                    dh=wpick(rng, [('d', 2), ('s', 1), ('dh', 1)]), q=wpick(rng, [('k', 5), ('q', 3)]), gh=wpick(rng, [('gh', 3), ('g', 1)]), y='j', w='w')
        st.update(uu='u', ii=wpick(rng, [('i', 5), ('ie', 1)]), ay='ei', aw='au', a_e=0.15, u_o=0.3, i_e=0.1)
    else:  # eg
        cons.update(kh='kh', j='g', sh='sh', th=wpick(rng, [('s', 2), ('t', 1)]), dh=wpick(rng, [('z', 3), ('d', 1)]),
                    q=wpick(rng, [('k', 3), ('q', 3), ("'", 1)]), gh='gh', y='y', w='w')
        st.update(uu=wpick(rng, [('ou', 4), ('u', 3)]), ii=wpick(rng, [('i', 6), ('ee', 1)]), ay=wpick(rng, [('ei', 3), ('ai', 2), ('ay', 1)]),
                  aw=wpick(rng, [('aw', 2), ('ou', 2)]), a_e=0.45, u_o=0.5, i_e=0.35)
    cons['ẓ'] = wpick(rng, [('z', 3), ('dh', 1)])
    cons['ḍ'] = wpick(rng, [('d', 4), ('dh', 1)])
    st.update(aa=wpick(rng, [('a', 12), ('aa', 1)]), e_i=0, e_a=0, o_u=0, u='ou' if lang == 'fr' else 'u',
              tam=wpick(rng, [('', 6), ('h', 3)]) if lang != 'fr' else '',
              ain=wpick(rng, [('', 5), ("'", 3)]),
              article=wpick(rng, [('hyphen', 5), ('space', 3), ('join', 1), ('drop', 2), ('assim', 1)]),
              al_hy=wpick(rng, [('Al-', 4), ('al-', 2)]),
              abd=wpick(rng, [('join', 5), ('space', 3), ('full', 1)]),
              bin=wpick(rng, [('join', 3), ('Ben', 3), ('Bin', 1), ('Ibn', 1)]) if country == 'MAR' else wpick(rng, [('Bin', 2), ('Ibn', 1), ('Ben', 1)]),
              ullah=wpick(rng, [('ullah', 4), ('allah', 3), ('ullah', 1), ('alla', 1)]))
    st['cons'] = cons
    return st


# ---------------------------------------------------------------------------
# BCS (Serbian / Croatian / Bosnian): canonical Gaj Latin
# ---------------------------------------------------------------------------
BCS_CYR = {'a': 'а', 'b': 'б', 'v': 'в', 'g': 'г', 'd': 'д', 'đ': 'ђ', 'e': 'е', 'ž': 'ж', 'z': 'з',
           'i': 'и', 'j': 'ј', 'k': 'к', 'l': 'л', 'lj': 'љ', 'm': 'м', 'n': 'н', 'nj': 'њ', 'o': 'о',
           'p': 'п', 'r': 'р', 's': 'с', 't': 'т', 'ć': 'ћ', 'u': 'у', 'f': 'ф', 'h': 'х', 'c': 'ц',
           'č': 'ч', 'dž': 'џ', 'š': 'ш', ' ': ' ', '-': '-'}


def bcs_tokens(w):
    t = []
    i = 0
    while i < len(w):
        if w[i:i + 2] in ('lj', 'nj', 'dž'):
            t.append(w[i:i + 2])
            i += 2
        else:
            t.append(w[i])
            i += 1
    return t


def bcs_render(canon, st):
    t = bcs_tokens(canon)
    sysn = st['sys']
    if sysn == 'cyr':
        return cap(''.join(BCS_CYR.get(x, x) for x in t))
    if sysn == 'gaj':
        return cap(canon)
    res = []
    n = len(t)
    for i, x in enumerate(t):
        end_ic = (x == 'ć' and i == n - 1 and i > 0 and t[i - 1] == 'i')
        if sysn == 'ascii':
            m = {'č': 'c', 'ć': 'c', 'š': 's', 'ž': 'z', 'đ': st['dj'], 'dž': st['dz']}.get(x, x)
        elif sysn == 'de':
            m = {'č': 'tsch', 'ć': 'tsch', 'š': 'sch', 'ž': st['zh_de'], 'đ': 'dj', 'dž': 'dsch',
                 'v': 'w' if st['v_w'] else 'v', 'c': 'z' if st['c_z'] else 'c'}.get(x, x)
            if end_ic and st['ic_de'] == 'ic':
                m = 'c'
        else:  # en
            m = {'č': 'ch', 'ć': 'ch', 'š': 'sh', 'ž': 'zh', 'đ': 'dj', 'dž': 'dz' if st['dz'] == 'dz' else 'dj'}.get(x, x)
            if end_ic and st['ic_en'] == 'c':
                m = 'c'
        res.append(m)
    return cap(''.join(res))


def bcs_style(rng, person):
    serb = person['eth'] == 's'
    sysn = wpick(rng, [('gaj', 35), ('ascii', 28), ('de', 22), ('en', 6), ('cyr', 18 if serb else 0)])
    return {'sys': sysn, 'dj': wpick(rng, [('dj', 3), ('d', 2)]), 'dz': wpick(rng, [('dz', 2), ('dj', 1)]),
            'zh_de': wpick(rng, [('sch', 3), ('sh', 1), ('z', 2)]), 'v_w': rng.random() < 0.8,
            'c_z': rng.random() < 0.3, 'ic_de': wpick(rng, [('itsch', 4), ('ic', 1)]),
            'ic_en': wpick(rng, [('ch', 1), ('c', 1)]), 'seed': rng.randrange(10 ** 9)}


# ---------------------------------------------------------------------------
# Turkish / Kurdish: canonical Turkish orthography, Kurdish in Kurmanji (Hawar)
# ---------------------------------------------------------------------------
def ku_to_tr(s):
    return s.translate(str.maketrans({'ê': 'e', 'î': 'i', 'û': 'u', 'x': 'h', 'w': 'v', 'q': 'k'}))


def tr_cap(s, turkish):
    out = []
    up = True
    for ch in s:
        if up and ch.isalpha():
            if turkish and ch == 'i':
                out.append('İ')
            elif turkish and ch == 'ı':
                out.append('I')
            else:
                out.append(ch.upper())
            up = False
        else:
            out.append(ch)
        if ch in ' -':
            up = True
    return ''.join(out)


def tk_render(ent, st):
    canon = ent['c']
    kurd = ent.get('ku', False)
    sysn = st['sys']
    if kurd and sysn == 'ku':
        return tr_cap(canon, False)
    s = canon
    if kurd:
        if sysn in ('tr', 'ascii') or st['ku_tr']:
            s = ku_to_tr(s)
    if sysn == 'tr' or sysn == 'ku':
        return tr_cap(s, True)
    if sysn == 'ascii':
        s = s.translate(str.maketrans({'ç': 'c', 'ş': 's', 'ğ': 'g', 'ı': 'i', 'ö': 'o', 'ü': 'u', 'â': 'a',
                                       'ê': 'e', 'î': 'i', 'û': 'u'}))
        return tr_cap(s, False)
    res = []
    for i, ch in enumerate(s):
        if sysn == 'de':
            m = {'ç': 'tsch', 'ş': 'sch', 'c': 'dsch', 'ö': st['oe'], 'ü': st['ue'], 'ğ': st['gh_de'],
                 'ı': 'i', 'ê': 'e', 'î': 'i', 'û': 'u', 'x': 'ch', 'q': 'k',
                 'v': 'w' if st['v_w'] else 'v', 'y': 'j' if st['y_j'] else 'y', 'z': 's' if st['z_s'] else 'z'}.get(ch, ch)
        else:  # en
            m = {'ç': 'ch', 'ş': 'sh', 'c': 'j', 'ö': 'o', 'ü': 'u', 'ğ': st['gh_en'], 'ı': 'i', 'ê': 'e',
                 'î': st['ii'], 'û': st['uu'], 'x': 'kh', 'q': 'q'}.get(ch, ch)
        res.append(m)
    return tr_cap(''.join(res), False)


def tk_style(rng, person):
    kurd = person['eth'] == 'k'
    foreign = person['nat'] != 'TUR'
    sysn = wpick(rng, [('tr', 40 if not foreign else 8), ('ku', 25 if kurd else 0), ('ascii', 30), ('de', 20), ('en', 10 if not foreign else 25)])
    return {'sys': sysn, 'oe': wpick(rng, [('oe', 3), ('ö', 2)]), 'ue': wpick(rng, [('ue', 3), ('ü', 2)]),
            'gh_de': wpick(rng, [('g', 4), ('', 1)]), 'gh_en': wpick(rng, [('g', 4), ('gh', 1)]),
            'v_w': rng.random() < 0.3, 'y_j': rng.random() < 0.25, 'z_s': rng.random() < 0.1,
            'ku_tr': rng.random() < 0.5, 'ii': wpick(rng, [('i', 4), ('ee', 1)]), 'uu': wpick(rng, [('u', 4), ('oo', 1)]),
            'seed': rng.randrange(10 ** 9)}


# ---------------------------------------------------------------------------
# East Slavic: canonical Cyrillic forms per language (uk / ru / be)
# ---------------------------------------------------------------------------
CYR_VOW = set('аеєиіїоуюяэыёАЕЄИІЇОУЮЯЭЫЁ')


def cyr_latin(s, lang, sysn, st):
    s0 = s
    s = s.lower()
    out = []
    n = len(s)
    for i, ch in enumerate(s):
        prv = s[i - 1] if i > 0 else ' '
        nxt = s[i + 1] if i + 1 < n else ' '
        initial = prv in ' -'
        after_v = prv in CYR_VOW or prv in "ьъ'’"
        if ch in ' -':
            out.append(ch)
            continue
        if ch in "'’ʼ":
            continue
        m = None
        if lang == 'uk':
            base = {'а': 'a', 'б': 'b', 'в': 'v', 'г': 'h', 'ґ': 'g', 'д': 'd', 'е': 'e', 'ж': 'zh', 'з': 'z',
                    'и': 'y', 'і': 'i', 'к': 'k', 'л': 'l', 'м': 'm', 'н': 'n', 'о': 'o', 'п': 'p', 'р': 'r',
                    'с': 's', 'т': 't', 'у': 'u', 'ф': 'f', 'х': 'kh', 'ц': 'ts', 'ч': 'ch', 'ш': 'sh',
                    'щ': 'shch', 'ь': ''}
            if sysn == 'nat':
                m = {'є': 'ye' if initial else 'ie', 'ї': 'yi' if initial else 'i', 'й': 'y' if initial else 'i',
                     'ю': 'yu' if initial else 'iu', 'я': 'ya' if initial else 'ia'}.get(ch)
            elif sysn == 'bgn':
                m = {'є': 'ye', 'ї': 'yi', 'й': 'y', 'ю': 'yu', 'я': 'ya'}.get(ch)
            elif sysn == 'de':
                m = {'в': 'w', 'ж': 'sch', 'з': 's', 'й': 'j', 'х': 'ch', 'ц': 'z', 'ч': 'tsch', 'ш': 'sch',
                     'щ': 'schtsch', 'є': 'je', 'ї': 'ji', 'ю': 'ju', 'я': 'ja',
                     'с': 'ss' if (prv in CYR_VOW and nxt in CYR_VOW) else 's'}.get(ch)
            elif sysn == 'sci':
                m = {'ж': 'ž', 'ч': 'č', 'ш': 'š', 'щ': 'šč', 'х': 'ch', 'ц': 'c', 'й': 'j', 'ю': 'ju',
                     'я': 'ja', 'є': 'je', 'ї': 'ji'}.get(ch)
            else:  # en informal
                m = {'є': 'ye', 'ї': 'yi', 'й': 'y' if nxt == ' ' or initial else 'i', 'ю': 'yu', 'я': 'ya',
                     'и': st['y_i']}.get(ch)
            if m is None:
                m = base.get(ch, ch)
        elif lang == 'ru':
            base = {'а': 'a', 'б': 'b', 'в': 'v', 'г': 'g', 'д': 'd', 'е': 'e', 'ё': 'e', 'ж': 'zh', 'з': 'z',
                    'и': 'i', 'й': 'i', 'к': 'k', 'л': 'l', 'м': 'm', 'н': 'n', 'о': 'o', 'п': 'p', 'р': 'r',
                    'с': 's', 'т': 't', 'у': 'u', 'ф': 'f', 'х': 'kh', 'ц': 'ts', 'ч': 'ch', 'ш': 'sh',
                    'щ': 'shch', 'ъ': 'ie', 'ы': 'y', 'ь': '', 'э': 'e', 'ю': 'iu', 'я': 'ia'}
            if sysn == 'bgn' or sysn == 'en':
                m = {'е': 'ye' if initial or after_v else 'e', 'ё': 'yo' if initial or after_v or prv in 'жшчщ' and False else ('yo' if sysn == 'en' else 'ë'),
                     'й': 'y', 'ю': 'yu', 'я': 'ya', 'ъ': '', 'ь': ''}.get(ch)
                if sysn == 'en' and ch == 'й' and prv == 'и' and nxt == ' ':
                    m = st['iy_en']
                if sysn == 'en' and ch == 'к' and nxt == 'с' and st['x']:
                    m = 'x'
                if sysn == 'en' and ch == 'с' and prv == 'к' and st['x']:
                    m = ''
            elif sysn == 'de':
                m = {'в': 'w', 'ж': 'sch', 'з': 's', 'й': 'j', 'х': 'ch', 'ц': 'z', 'ч': 'tsch', 'ш': 'sch',
                     'щ': 'schtsch', 'е': 'je' if initial or after_v else 'e', 'ё': 'jo' if initial or after_v else 'jo',
                     'ю': 'ju', 'я': 'ja', 'ъ': '', 'ь': '',
                     'с': 'ss' if (prv in CYR_VOW and nxt in CYR_VOW) else 's'}.get(ch)
                if ch == 'й' and prv == 'и' and nxt == ' ':
                    m = st['ij_de']
            elif sysn == 'sci':
                m = {'ж': 'ž', 'ч': 'č', 'ш': 'š', 'щ': 'šč', 'х': 'ch', 'ц': 'c', 'й': 'j', 'ю': 'ju',
                     'я': 'ja', 'ё': 'ë', 'ъ': '', 'ь': ''}.get(ch)
            if m is None:
                m = base.get(ch, ch)
        else:  # be
            base = {'а': 'a', 'б': 'b', 'в': 'v', 'г': 'h', 'д': 'd', 'е': 'ie', 'ё': 'io', 'ж': 'zh', 'з': 'z',
                    'і': 'i', 'й': 'i', 'к': 'k', 'л': 'l', 'м': 'm', 'н': 'n', 'о': 'o', 'п': 'p', 'р': 'r',
                    'с': 's', 'т': 't', 'у': 'u', 'ў': 'u', 'ф': 'f', 'х': 'kh', 'ц': 'ts', 'ч': 'ch', 'ш': 'sh',
                    'ы': 'y', 'ь': '', 'э': 'e', 'ю': 'iu', 'я': 'ia'}
            if sysn in ('nat', 'en', 'bgn'):
                if initial or after_v:
                    m = {'е': 'ye', 'ё': 'yo', 'ю': 'yu', 'я': 'ya', 'й': 'y'}.get(ch)
                if sysn == 'bgn' and ch == 'ў':
                    m = 'w'
            elif sysn == 'de':
                m = {'в': 'w', 'ж': 'sch', 'з': 's', 'й': 'j', 'х': 'ch', 'ц': 'z', 'ч': 'tsch', 'ш': 'sch',
                     'е': 'je' if initial or after_v else 'e', 'ё': 'jo', 'ю': 'ju', 'я': 'ja', 'ў': 'w'}.get(ch)
            elif sysn == 'sci':
                m = {'ж': 'ž', 'ч': 'č', 'ш': 'š', 'х': 'ch', 'ц': 'c', 'й': 'j', 'ю': 'ju', 'я': 'ja', 'е': 'je' if initial or after_v else 'e',
                     'ё': 'jo', 'ў': 'ŭ'}.get(ch)
            if m is None:
                m = base.get(ch, ch)
        out.append(m)
    return cap(''.join(out))


def sl_form(ent, lang, sex):
    f = ent.get(lang) or ent.get('ru') or ent.get('uk')
    if isinstance(f, tuple):
        f = f[0] if sex == 'M' else f[1]
    return f


def sl_render(ent, st, sex):
    f = sl_form(ent, st['lang'], sex)
    if st['sys'] == 'cyr':
        return f
    return cyr_latin(f, st['lang'], st['sys'], st)


def sl_style(rng, person):
    nat = person['nat']
    if nat == 'UKR':
        lang = wpick(rng, [('uk', 8), ('ru', 2)])
    elif nat == 'RUS':
        lang = 'ru'
    else:
        lang = wpick(rng, [('be', 5), ('ru', 5)])
    sysn = wpick(rng, [('cyr', 22), ('nat', 30), ('bgn', 12), ('de', 22), ('sci', 6), ('en', 8)])
    return {'lang': lang, 'sys': sysn, 'y_i': wpick(rng, [('y', 3), ('i', 2)]), 'iy_en': wpick(rng, [('', 2), ('y', 1)]),
            'ij_de': wpick(rng, [('', 2), ('j', 1)]), 'x': rng.random() < 0.5, 'seed': rng.randrange(10 ** 9)}


def patronymic(father, sex):
    """Ukrainian and Russian patronymic derived by rule from the father's name entity."""
    res = {}
    uk = father['uk']
    if uk.endswith('й'):
        res['uk'] = (uk + 'ович', uk[:-1] + 'ївна')
    elif uk.endswith('о'):
        res['uk'] = (uk[:-1] + 'ович', uk[:-1] + 'івна')
    elif uk.endswith('а'):
        res['uk'] = (uk[:-1] + 'айович', uk[:-1] + 'аївна')
    elif uk.endswith('ь'):
        res['uk'] = (uk + 'ович', uk[:-1] + 'івна')
    elif uk == 'Федір':
        res['uk'] = ('Федорович', 'Федорівна')
    else:
        res['uk'] = (uk + 'ович', uk + 'івна')
    ru = father['ru']
    irregular = {'Пётр': 'Петр', 'Павел': 'Павл', 'Михаил': 'Михайл', 'Лев': 'Льв', 'Дмитрий': 'Дмитри'}
    if ru in irregular:
        st = irregular[ru]
        res['ru'] = (st + 'евич', st + 'евна') if st.endswith('и') else (st + 'ович', st + 'овна')
    elif ru.endswith('ий'):
        res['ru'] = (ru[:-2] + 'ьевич', ru[:-2] + 'ьевна')
    elif ru.endswith('ей') or ru.endswith('ай'):
        res['ru'] = (ru[:-1] + 'евич', ru[:-1] + 'евна')
    elif ru.endswith('ь'):
        res['ru'] = (ru[:-1] + 'евич', ru[:-1] + 'евна')
    else:
        res['ru'] = (ru + 'ович', ru + 'овна')
    res['be'] = None
    return {'id': 'patr:' + father['id'], 'uk': res['uk'], 'ru': res['ru'], 'patr': True}


# ---------------------------------------------------------------------------
# Ge'ez (Tigrinya / Amharic): canonical syllabic transcription
#   vowel orders ä u i a e ə o ; consonant without vowel = 6th order
# ---------------------------------------------------------------------------
GZ_BASE = {'h': 0x1200, 'l': 0x1208, 'ḥ': 0x1210, 'm': 0x1218, 'r': 0x1228, 's': 0x1230, 'š': 0x1238,
           'q': 0x1240, 'Q': 0x1250, 'b': 0x1260, 'v': 0x1268, 't': 0x1270, 'č': 0x1278, 'n': 0x1290,
           'ñ': 0x1298, 'ʾ': 0x12A0, 'k': 0x12A8, 'x': 0x12B8, 'w': 0x12C8, 'ʿ': 0x12D0, 'z': 0x12D8,
           'ž': 0x12E0, 'y': 0x12E8, 'd': 0x12F0, 'ǧ': 0x1300, 'g': 0x1308, 'ṭ': 0x1320, 'ç': 0x1328,
           'ṣ': 0x1338, 'f': 0x1348, 'p': 0x1350}
GZ_ORDER = {'ä': 0, 'u': 1, 'i': 2, 'a': 3, 'e': 4, 'ə': 5, 'o': 6}


def gz_syllables(canon):
    """-> list of (consonant, vowel or None, explicit) and separators"""
    out = []
    i = 0
    s = canon
    while i < len(s):
        ch = s[i]
        if ch in '+ ':
            out.append(ch)
            i += 1
            continue
        if ch in GZ_ORDER:  # vowel without consonant -> glottal
            out.append(('ʾ', ch))
            i += 1
            continue
        c = ch
        v = None
        if i + 1 < len(s) and s[i + 1] in GZ_ORDER:
            v = s[i + 1]
            i += 2
        else:
            i += 1
        out.append((c, v))
    return out


def gz_script(canon, st):
    res = []
    prev = None
    for x in gz_syllables(canon):
        if x == '+':
            continue
        if x == ' ':
            res.append(' ')
            prev = None
            continue
        c, v = x
        if v is None and prev == c:
            continue  # gemination not written
        res.append(chr(GZ_BASE[c] + GZ_ORDER[v or 'ə']))
        prev = c
    return ''.join(res)


def gz_latin(canon, st):
    r = seeded(st, canon)
    syl = gz_syllables(canon)
    res = []
    n = len(syl)
    for i, x in enumerate(syl):
        if x == '+':
            res.append(st['plus'])
            continue
        if x == ' ':
            res.append(' ')
            continue
        c, v = x
        prv = syl[i - 1] if i > 0 else None
        nxt = syl[i + 1] if i + 1 < n else None
        if v is None and prv not in (None, '+', ' ') and prv[0] == c and prv[1] is None and False:
            pass
        cm = {'ḥ': 'h', 'ʾ': '', 'ʿ': st['ain'], 'q': st['q'], 'Q': st['Q'], 'x': st['x'], 'č': st['ch'],
              'ç': st['ch'], 'š': st['sh'], 'ž': st['zh'], 'ǧ': st['j'], 'ṣ': st['ts'], 'ṭ': 't',
              'ñ': st['ny'], 'y': st['y'], 'w': 'w'}.get(c, c)
        if c in ('ʾ', 'ʿ') and i == 0:
            cm = ''
        # gemination: consonant with no vowel followed by same consonant
        if v is None and nxt not in (None, '+', ' ') and nxt[0] == c and not st['gem']:
            continue
        if v is None:
            if c == 'y' and prv not in (None, '+', ' ') and prv[1] in ('a', 'ä', 'e') and (nxt in (None, '+', ' ') or nxt[1] is None):
                # diphthong ay / äy at end of syllable
                res.append(st['ay_y'])
                continue
            res.append(cm)
            continue
        if v == 'ä':
            vm = 'o' if c == 'w' and r.random() < st['wo'] else ('a' if r.random() < st['ae_a'] else 'e')
        elif v == 'ə':
            vm = wpick(r, [('i', st['schwa_i']), ('e', st['schwa_e']), ('', st['schwa_0'])])
            if c == 'w':
                vm = 'u' if vm == '' else vm
        elif v == 'u':
            vm = st['u']
        else:
            vm = v
        res.append(cm + vm)
    s = ''.join(res)
    return cap(s)


def gz_style(rng, person):
    lang = wpick(rng, [('en', 6), ('de', 3), ('fr', 1)])
    st = {'seed': rng.randrange(10 ** 9), 'script': rng.random() < 0.15,
          'plus': wpick(rng, [('', 6), (' ', 2), ('-', 1)]),
          'ain': wpick(rng, [('', 6), ("'", 1)]), 'q': wpick(rng, [('k', 5), ('q', 3)]),
          'Q': wpick(rng, [('k', 3), ('kh', 2), ('h', 2), ('q', 1)]), 'x': wpick(rng, [('k', 5), ('kh', 2), ('h', 1)]),
          'ch': {'de': 'tsch', 'fr': 'tch'}.get(lang, 'ch'), 'sh': {'de': 'sch', 'fr': 'ch'}.get(lang, 'sh'),
          'zh': wpick(rng, [('zh', 2), ('j', 1)]), 'j': {'de': 'dsch', 'fr': 'dj'}.get(lang, 'j'),
          'ts': {'de': wpick(rng, [('z', 2), ('ts', 2)])}.get(lang, wpick(rng, [('ts', 6), ('tz', 1), ('s', 1), ("ts'", 1)])),
          'ny': wpick(rng, [('gn', 1), ('ny', 2)]), 'y': 'j' if lang == 'de' and rng.random() < 0.4 else 'y',
          'ay_y': wpick(rng, [('y', 5), ('i', 4)]), 'gem': rng.random() < 0.7,
          'wo': 0.35, 'ae_a': wpick(rng, [(0.03, 9), (0.2, 1)]),
          'schwa_i': 5, 'schwa_e': 3, 'schwa_0': 2, 'u': 'ou' if lang == 'fr' else 'u'}
    return st


def gz_render(canon, st):
    if st['script']:
        return gz_script(canon, st)
    return gz_latin(canon, st)


# ---------------------------------------------------------------------------
# Somali: canonical official orthography (x = ħ, c = ʕ, dh, q, kh, long vowels doubled)
# ---------------------------------------------------------------------------
def so_render(canon, st):
    sysn = st['sys']
    if sysn == 'so':
        return cap(canon)
    r = seeded(st, canon)
    s = canon
    out = []
    i = 0
    n = len(s)
    V = 'aeiou'
    while i < n:
        ch = s[i]
        two = s[i:i + 2]
        initial = i == 0 or s[i - 1] in ' -'
        if ch == 'c':
            nxt = s[i + 1] if i + 1 < n else ''
            if initial and nxt == 'u' and sysn != 'it':
                out.append(wpick(r, [('o', 3), ('u', 2)]))
                i += 2
                if i < n and s[i] == 'u':
                    i += 1
                continue
            if initial and nxt == 'i':
                out.append(wpick(r, [('e', 1), ('i', 2)]))
                i += 2
                continue
            if not initial and i > 0 and s[i - 1] in V and nxt in V and st['ain']:
                out.append("'")
            i += 1
            continue
        if ch == 'x':
            out.append('h')
            i += 1
            continue
        if two == 'dh':
            out.append(st['dh'])
            i += 2
            continue
        if two == 'kh':
            out.append(st['kh'])
            i += 2
            continue
        if two == 'sh':
            if sysn == 'it':
                out.append('sc' if i + 2 < n and s[i + 2] in 'ie' else 'sci')
            else:
                out.append(st['sh'])
            i += 2
            continue
        if ch == 'j':
            if sysn == 'it':
                out.append('g' if i + 1 < n and s[i + 1] in 'ie' else 'gi')
            else:
                out.append(st['j'])
            i += 1
            continue
        if ch == 'q':
            out.append(st['q'])
            i += 1
            continue
        if ch == 'w':
            out.append('u' if sysn == 'it' and (i + 1 < n and s[i + 1] in V) else 'w')
            i += 1
            continue
        if ch == 'y':
            out.append('j' if sysn == 'de' and initial else ('i' if sysn == 'it' else 'y'))
            i += 1
            continue
        if ch in V and s[i + 1:i + 2] == ch:  # long vowel
            keep = {'a': st['aa'], 'e': 'e', 'i': st['ii'], 'o': 'o', 'u': st['uu']}[ch]
            out.append(keep)
            i += 2
            continue
        if ch == 'i' and r.random() < st['i_e']:
            out.append('e')
            i += 1
            continue
        out.append(ch)
        i += 1
    return cap(''.join(out))


def so_style(rng, person):
    sysn = wpick(rng, [('so', 30), ('en', 50), ('de', 12), ('it', 8)])
    return {'sys': sysn, 'seed': rng.randrange(10 ** 9), 'ain': rng.random() < 0.2,
            'dh': wpick(rng, [('dh', 3), ('d', 2)]), 'kh': {'de': 'ch'}.get(sysn, wpick(rng, [('kh', 3), ('h', 1)])),
            'sh': {'de': 'sch'}.get(sysn, 'sh'), 'j': {'de': 'dsch'}.get(sysn, 'j'),
            'q': wpick(rng, [('q', 4), ('k', 3), ('g', 1)]),
            'aa': wpick(rng, [('a', 5), ('aa', 1)]), 'ii': wpick(rng, [('i', 4), ('ee', 1)]),
            'uu': wpick(rng, [('u', 3), ('oo', 2)]), 'i_e': 0.15}


# ---------------------------------------------------------------------------
# Name pools
# ---------------------------------------------------------------------------
def ents(pool, role, items, **extra):
    out = []
    for it in items:
        if isinstance(it, dict):
            e = dict(it)
        else:
            e = {'c': it}
        e.update(extra)
        key = e.get('c') or e.get('uk') or e.get('ru')
        if isinstance(key, tuple):
            key = key[0]
        e['id'] = '%s:%s:%s' % (pool, role, key)
        out.append(e)
    return out


# -- Arabic --
AR_M = ['ʿumar', 'ʿalī', 'ḥasan', 'ʿabd al-raḥman', 'ʿabdullāh', 'ʾibrāhīm', 'ʾismāʿīl', 'ṣāliḥ', 'saʿīd',
        'jamāl', 'ṭāriq', 'rāmī', 'bashīr', 'nabīl', 'walīd', 'ziyād', 'ḥamza@', 'sulaymān', 'muṣṭafà',
        'maḥmūd', 'ʿammār', 'jihād', 'fāris', 'ghassān', 'qāsim', 'hishām', 'ʾusāma@', 'ʾanas', 'bilāl',
        'rashīd', 'majīd', 'yāsir', 'ʿiṣām', 'munīr', 'shādī', 'ʿādil', 'ʿabd al-ʿazīz', 'ʿabd al-qādir',
        'nāṣir', 'ḥusām', 'thāmir', 'ẓāfir', 'faraj', 'ʿuthmān', 'ʾidrīs', 'ṭaha', 'wāʾil', 'ʿimād',
        'ʾayman', 'ḥāzim', 'muʾayyad', 'ghayth', 'ʾad|ham']
AR_F = ['ʿāʾisha@', 'khadīja@', 'nūr', 'hudà', 'ʾamal', 'salmà', 'laylà', 'rīm', 'ranā', 'hiba@', 'dīma@',
        'ʾasmāʾ', 'suʿād', 'samīra@', 'ḥanān', 'wafāʾ', 'ghāda@', 'rashā', 'ruqayya@', 'shaymāʾ', 'ʾilhām',
        'nādiya@', 'jamīla@', 'sanāʾ', 'lubnà', 'ʾamīra@', 'ṣafāʾ', 'duʿāʾ', 'ʾīmān', 'bushrà', 'naʿīma@',
        'nawāl', 'sawsan', 'hāla@', 'yāsmīn', 'ʾaḥlām', 'raghad', 'ʿabīr', 'manāl', 'ṣabrīn']
AR_FAM = {
    'SYR': ['al-khaṭīb', 'al-najjār', 'al-shāmī', 'al-ḥalabī', 'al-ṣabbāgh', 'al-ḥamwī', 'darwīsh', 'zaydān',
            'barakāt', 'ḥijāzī', 'farḥāt', 'ḥammūd', 'al-ʿaṭṭār', 'al-kurdī', 'qabbānī', 'al-ʾaswad', 'al-ʿumarī',
            'al-ḥarīrī', 'shaykh ʿuthmān', 'al-zuʿbī', 'ṭlās', 'al-ʾatāsī', 'ḥaydar', 'al-dayrī'],
    'IRQ': ['al-tamīmī', 'al-jubūrī', 'al-dulaymī', 'al-shammarī', 'al-ʿubaydī', 'al-baghdādī', 'al-ʿānī',
            'al-rāwī', 'al-sāmarrāʾī', 'al-bayātī', 'al-zubaydī', 'al-ʿazzāwī', 'al-ḥakīm', 'al-mūsawī',
            'al-khafājī', 'al-karbalāʾī', 'al-saʿdī', 'al-ṭāʾī'],
    'EGY': ['shaʿbān', 'maṭar', 'ramaḍān', 'saʿd', 'ʿaṭiyya@', 'ʿabd al-ḥamīd', 'ṣabrī', 'fawzī', 'ḥusnī',
            'sharaf', 'ʿashmāwī', 'ʿabd al-salām', 'al-sharqāwī', 'ghālī', 'mursī', 'al-sayyid', 'ḥijāzī'],
    'SDN': ['ʿuthmān', 'ʾidrīs', 'bābikr', 'al-ṭayyib', 'ʾādam', 'ʿabd al-bāqī', 'al-nūr', 'ḥāmid', 'al-ʾamīn',
            'ʾisḥāq', 'jubāra@', 'al-mahdawī', 'ṭāhā'],
    'MAR': ['al-ʿamrānī', 'bin jallūn', 'al-ʾidrīsī', 'bannānī', 'al-tāzī', 'al-ʿalawī', 'barrāda@', 'al-wazzānī',
            'al-fāsī', 'al-zarhūnī', 'būzīd', 'bin sulaymān', 'al-ḥajjāwī', 'al-ṣanhājī', 'būshʿayb', 'al-ʿayyādī'],
}
AR_PLACES = {
    'SYR': [['Idlib', 'Idleb', 'Edlib'], ['Latakia', 'Lattakia', 'Al-Ladhiqiyah', 'Lattaquié', 'Latakieh'],
            ['Hama', 'Hamah', 'Hamat'], ['Deir ez-Zor', 'Deir al-Zour', 'Dair az-Zaur', 'Deir Ezzor'],
            ['Raqqa', 'Ar-Raqqa', 'Rakka', 'Al Raqqah'], ['Daraa', "Dar'a", 'Deraa', 'Deraa'],
            ['Tartus', 'Tartous', 'Tartous', 'Tortosa'], ['Qamishli', 'Al-Qamishli', 'Kamischli', 'Qamişlo'],
            ['Afrin', 'Efrîn', 'Afrine'], ['Al-Hasakah', 'Hasaka', 'Hassakeh', 'El Hasake']],
    'IRQ': [['Bagdad', 'Baghdad', 'Baghdād'], ['Basra', 'Al-Basrah', 'Bassora', 'Basrah'], ['Kirkuk', 'Kerkuk', 'Karkuk'],
            ['Erbil', 'Arbil', 'Hewlêr', 'Irbil'], ['Sulaimaniyya', 'Sulaymaniyah', 'Slemani', 'As-Sulaimaniyah'],
            ['Nadschaf', 'Najaf', 'An-Najaf'], ['Kerbela', 'Karbala', "Karbala'"], ['Dohuk', 'Duhok', 'Dahuk'],
            ['Falludscha', 'Fallujah', 'Al-Falluja'], ['Tikrit', 'Tekrit']],
    'EGY': [['Kairo', 'Cairo', 'Al-Qahira', 'Le Caire'], ['Alexandria', 'Al-Iskandariyya', 'Alexandrie', 'Iskandariya'],
            ['Assiut', 'Asyut', 'Assiout'], ['Tanta', 'Tantah'], ['Assuan', 'Aswan', 'Assouan'], ['Port Said', 'Bur Said', 'Port-Saïd'],
            ['Zagazig', 'Az-Zaqaziq'], ['Ismailia', 'Al-Ismailiyya', 'Ismaïlia']],
    'SDN': [['Khartum', 'Khartoum', 'Al-Khartum'], ['Omdurman', 'Umm Durman'], ['Kassala', 'Kasala'], ['El Fasher', 'Al-Fashir', 'Fasher'],
            ['Nyala', 'Niyala'], ['Port Sudan', 'Bur Sudan'], ['Wad Madani', 'Wad Medani']],
    'MAR': [['Casablanca', 'Dar el Beida', 'Ad-Dar al-Bayda'], ['Fès', 'Fes', 'Fez', 'Fas'], ['Marrakesch', 'Marrakech', 'Marrakesh'],
            ['Tanger', 'Tangier', 'Tanja'], ['Rabat', 'Ar-Ribat'], ['Oujda', 'Udschda', 'Wajda'], ['Meknès', 'Meknes', 'Miknas'],
            ['Nador', 'An-Nadur'], ['Al Hoceima', 'Al-Husaima', 'Alhucemas'], ['Agadir', 'Agadir']],
}

# -- Persian / Dari / Pashto --
FA_M = ['reḍā', 'ʿalīreḍā', 'ḥamīd', 'javād', 'moḥsen', 'amīr', 'farhād', 'dāvūd', 'naṣīr', 'qāsem', 'esmāʿīl',
        'jamshīd', 'bahrām', 'kāmrān', 'nāder', 'rostam', 'sohrāb', 'omīd', 'behzād', 'mortaḍà', 'ḥabībullāh',
        'raḥmatullāh', 'nūrullāh', 'ḏabīḥullāh', 'sharīf', 'vaḥīd', 'farīd', 'ḥeshmat', 'ajmal', 'ʿaẓīm',
        'ramaḍān', 'qorbān', 'ṣādeq', 'masʿūd', 'ḥāmed', 'yaʿqūb', 'ʿabbās', 'shafīq', 'jāvīd', 'ʿenāyatullāh',
        'kheyrullāh', 'parvīz', 'siyāvash', 'bābak']
FA_F = ['zahrā', 'maʿṣūme', 'ṭāhere', 'parīsā', 'shīrīn', 'narges', 'zohre', 'leylā', 'marḍiye', 'somayye',
        'mahnāz', 'farzāne', 'ṣoghrà', 'golnār', 'parvīn', 'fereshte', 'nāzanīn', 'ḥamīde', 'shabnam', 'sakīne',
        'roqayye', 'mahsā', 'nasrīn', 'ṭayyebe', 'ʿazīze', 'ṯorayyā', 'robābe', 'belqīs', 'āmene', 'nāhīd',
        'ḥalīme', 'gol', 'khātere', 'mozhgān', 'ʿeffat']
FA_FAM = {
    'IRN': ['reḍāyī', 'karīmī', 'ḥeydarī', 'raḥīmī', 'najafī', 'solṭānī', 'amīnī', 'ṣādeqī', 'qorbānī', 'ṭāherī',
            'hāshemī', 'nūrī', 'akbarī', 'ḥakīmī', 'ṣafarī', 'jalālī', 'mīrzāyī', 'naẓarī', 'zamānī', 'bābāyī',
            'kāẓemī', 'ʿabbāsī', 'rostamī', 'ebrāhīmī', 'qāsemī', 'yazdānī', 'shīrāzī', 'eṣfahānī', 'ṭabāṭabāyī'],
    'AFG': ['nūrzay', 'ḥaqqānī', 'vaḥdat', 'sāḥel', 'amīrī', 'ḥabībī', 'sharīfī', 'rasūlī', 'faqīrī', 'ṣeddīqī',
            'ʿazīzī', 'naṣīrī', 'dorrānī', 'bārakzay', 'ākhondzāde', 'sādāt', 'ḥanafī', 'ghaznavī', 'panjshīrī',
            'sāfī', 'kākar', 'shīnwārī', 'mohmand', 'vardak', 'ʿaṭāyī', 'qāderī'],
}
FA_PLACES = {
    'IRN': [['Maschhad', 'Mashhad', 'Meshhed', 'Mashad'], ['Isfahan', 'Esfahan', 'Ispahan'], ['Schiras', 'Shiraz', 'Chiraz'],
            ['Täbris', 'Tabriz', 'Tebriz'], ['Karadsch', 'Karaj'], ['Ahvaz', 'Ahwaz', 'Ahwas'], ['Ghom', 'Qom', 'Kom'],
            ['Kermanschah', 'Kermanshah', 'Kermanchah'], ['Rascht', 'Rasht'], ['Yazd', 'Jasd', 'Yezd']],
    'AFG': [['Masar-e Scharif', 'Mazar-i-Sharif', 'Mazar-e Sharif', 'Mazar'], ['Kandahar', 'Qandahar', 'Kandahār'],
            ['Dschalalabad', 'Jalalabad', 'Djalalabad'], ['Kundus', 'Kunduz', 'Qonduz'], ['Ghazni', 'Ghasni', 'Ghazna'],
            ['Bamiyan', 'Bamian', 'Bamyan'], ['Farah', 'Farah'], ['Pul-e Chumri', 'Pul-i-Khumri', 'Pol-e Khomri'],
            ['Talokan', 'Taloqan', 'Taluqan'], ['Laschkar Gah', 'Lashkar Gah', 'Lashkargah']],
}

# -- Serbian / Croatian / Bosnian --  (eth: s serbian, c croatian, b bosniak)
YU_M = {'s': ['dragan', 'milan', 'zoran', 'dejan', 'goran', 'miloš', 'đorđe', 'dušan', 'vuk', 'bojan', 'nenad',
              'predrag', 'mladen', 'branko', 'srđan', 'slobodan', 'ljubomir', 'radovan', 'miodrag', 'živorad',
              'vojislav', 'dalibor', 'nebojša', 'stevan', 'uroš'],
        'c': ['tomislav', 'krešimir', 'ante', 'josip', 'stjepan', 'željko', 'dražen', 'ivica', 'hrvoje', 'zvonimir',
              'mladen', 'goran', 'darko', 'tihomir', 'božidar'],
        'b': ['mirsad', 'emir', 'adnan', 'edin', 'haris', 'jasmin', 'dževad', 'nedžad', 'senad', 'nermin', 'mirza',
              'alen', 'ćamil', 'enes', 'kenan', 'damir', 'elvir', 'sead', 'suad', 'esad', 'zlatan']}
YU_F = {'s': ['milica', 'jovana', 'dragana', 'snežana', 'ljiljana', 'vesna', 'biljana', 'gordana', 'nataša', 'tijana',
              'slađana', 'đurđica', 'božana', 'mirjana', 'radmila', 'nevena', 'anđela', 'zorica', 'dušica'],
        'c': ['ivana', 'marija', 'danijela', 'ružica', 'jasna', 'sanja', 'tanja', 'ksenija', 'katarina', 'vesna',
              'snježana', 'željka', 'dubravka', 'blaženka'],
        'b': ['aida', 'amra', 'emina', 'lejla', 'selma', 'azra', 'mirela', 'dženana', 'dženita', 'šejla', 'alma',
              'edina', 'sabina', 'merima', 'nermina', 'belma', 'adisa', 'ajla']}
YU_FAM = {'s': ['jovanović', 'petrović', 'nikolić', 'marković', 'đorđević', 'stojanović', 'ilić', 'pavlović', 'popović',
                'savić', 'živković', 'tomić', 'lukić', 'čolić', 'ćosić', 'đukić', 'tadić', 'mitrović', 'radovanović',
                'vuković', 'stanković', 'milošević', 'knežević', 'kovačević', 'obradović', 'lazić', 'gajić', 'đurić'],
          'c': ['horvat', 'babić', 'perić', 'kovačić', 'šarić', 'jurić', 'grgić', 'blažević', 'mandić', 'knežević',
                'matić', 'vuković', 'božić', 'pavić', 'radić', 'barišić', 'šimić', 'rukavina'],
          'b': ['hadžić', 'hodžić', 'begović', 'delić', 'husić', 'mušić', 'šehić', 'dizdarević', 'omerović', 'salihović',
                'alić', 'mujić', 'zukić', 'karić', 'džafić', 'smajlović', 'kurtović', 'šabanović', 'bešić', 'ljubijankić',
                'čaušević', 'hasanbegović', 'mehmedbašić']}
YU_NAT = {'s': [('SRB', 6), ('BIH', 2.5), ('MNE', 1.5)], 'c': [('HRV', 8), ('BIH', 2)], 'b': [('BIH', 8.5), ('SRB', 1), ('MNE', 0.5)]}
YU_PLACES = {
    'SRB': [['Beograd', 'Belgrad', 'Belgrade', 'Београд'], ['Novi Sad', 'Neusatz', 'Нови Сад'], ['Niš', 'Nis', 'Nisch', 'Ниш'],
            ['Kragujevac', 'Kragujewatz', 'Крагујевац'], ['Subotica', 'Szabadka', 'Суботица'], ['Novi Pazar', 'Нови Пазар', 'Novipazar'],
            ['Čačak', 'Cacak', 'Tschatschak'], ['Kraljevo', 'Краљево']],
    'HRV': [['Zagreb', 'Agram'], ['Split', 'Spalato'], ['Rijeka', 'Fiume'], ['Osijek', 'Esseg', 'Osiek'], ['Zadar', 'Zara'],
            ['Slavonski Brod', 'Brod'], ['Vukovar', 'Wukowar']],
    'BIH': [['Sarajevo', 'Sarajewo', 'Сарајево'], ['Banja Luka', 'Banjaluka', 'Бања Лука'], ['Tuzla', 'Тузла'],
            ['Mostar', 'Мостар'], ['Zenica', 'Zeniza', 'Зеница'], ['Bihać', 'Bihac', 'Bihatsch'], ['Brčko', 'Brcko', 'Bertschko'],
            ['Prijedor', 'Приједор'], ['Doboj', 'Добој']],
    'MNE': [['Podgorica', 'Podgoriza', 'Подгорица', 'Titograd'], ['Nikšić', 'Niksic', 'Nikschitsch'], ['Bar', 'Antivari'],
            ['Pljevlja', 'Плевља'], ['Rožaje', 'Rozaje', 'Рожаје']],
}

# -- Turkish / Kurdish --
TK_M = ['emre', 'burak', 'murat', 'serkan', 'volkan', 'oğuz', 'kemal', 'erdal', 'ferhat', 'sinan', 'onur', 'barış',
        'tolga', 'ümit', 'gökhan', 'kadir', 'ercan', 'bülent', 'hakan', 'selim', 'ilhan', 'çağlar', 'tuncay', 'orhan',
        'levent', 'enes', 'furkan', 'şükrü', 'tayfun', 'erkan', 'özgür', 'uğur', 'cengiz', 'recep', 'cihan', 'yücel']
TK_F = ['elif', 'emine', 'hatice', 'gülsüm', 'sevgi', 'derya', 'özlem', 'büşra', 'esra', 'merve', 'songül', 'nurcan',
        'şule', 'gizem', 'dilek', 'hülya', 'yasemin', 'tuğba', 'çiğdem', 'filiz', 'sibel', 'ebru', 'pınar', 'şengül',
        'nazlı', 'gönül', 'hacer', 'kübra', 'cansu', 'özge']
TK_FAM = ['yılmaz', 'kaya', 'demir', 'şahin', 'çelik', 'yıldız', 'yıldırım', 'öztürk', 'aydın', 'özdemir', 'arslan',
          'doğan', 'kılıç', 'çetin', 'kara', 'koç', 'kurt', 'özkan', 'şimşek', 'polat', 'erdoğan', 'güneş', 'aksoy',
          'çakır', 'akgül', 'karataş', 'tekin', 'korkmaz', 'bozkurt', 'ateş', 'ünal', 'uçar', 'gündoğdu', 'keskin',
          'çiftçi', 'yüksel', 'tunç', 'avcı', 'coşkun', 'acar', 'ekinci', 'günay']
KU_M = ['rêbîn', 'şêrwan', 'azad', 'dilşad', 'welat', 'serhed', 'rojhat', 'zana', 'baran', 'hejar', 'kawa', 'diyar',
        'şiyar', 'mazlûm', 'xebat', 'rêzan', 'bawer', 'karwan', 'hozan', 'siyabend', 'çiya', 'dildar', 'şoreş', 'aram']
KU_F = ['jiyan', 'berfîn', 'rojda', 'zozan', 'dilan', 'hêvî', 'gulistan', 'bêrîvan', 'şîlan', 'helîn', 'ronahî',
        'evîn', 'nûjîn', 'xezal', 'delal', 'rûken', 'zelal', 'arjîn', 'rengîn', 'viyan', 'bêrîtan', 'newroz']
KU_FAM = ['şêxo', 'bozan', 'hemo', 'îbo', 'biro', 'osê', 'remo', 'cindî', 'berzencî', 'zêbarî', 'doskî', 'goranî',
          'botanî', 'mizûrî', 'barzanî', 'heso', 'temo', 'şemo', 'ferho', 'kiki', 'omerî', 'silêman']
TK_PLACES = {
    'TUR': [['İstanbul', 'Istanbul', 'Konstantinopel'], ['Ankara', 'Angora'], ['İzmir', 'Izmir', 'Smyrna'],
            ['Diyarbakır', 'Diyarbakir', 'Amed'], ['Gaziantep', 'Antep', 'Dîlok'], ['Şanlıurfa', 'Sanliurfa', 'Urfa', 'Riha'],
            ['Mardin', 'Mêrdîn'], ['Van', 'Wan'], ['Batman', 'Êlih'], ['Hakkari', 'Hakkâri', 'Colemêrg'], ['Kars', 'Qers'],
            ['Erzurum', 'Erzirom'], ['Konya', 'Iconium'], ['Adana'], ['Kayseri', 'Caesarea'], ['Trabzon', 'Trapezunt'],
            ['Muş', 'Mus', 'Mûş'], ['Tunceli', 'Dersim'], ['Ağrı', 'Agri', 'Qerekose']],
    'SYR': [['Qamishli', 'Al-Qamishli', 'Qamişlo', 'Kamischli'], ['Afrin', 'Efrîn'], ['Kobanê', 'Kobani', 'Ain al-Arab'],
            ['Amude', 'Amûdê', 'Amuda'], ['Derik', 'Dêrik', 'Al-Malikiyah']],
    'IRQ': [['Erbil', 'Hewlêr', 'Arbil'], ['Duhok', 'Dihok', 'Dohuk'], ['Sulaimaniyya', 'Silêmanî', 'Slemani'],
            ['Zakho', 'Zaxo', 'Sacho'], ['Sindschar', 'Sinjar', 'Şengal', 'Shingal']],
}

# -- East Slavic --
def S(uk, ru, be=None):
    return {'uk': uk, 'ru': ru, 'be': be}


SL_M = [S('Дмитро', 'Дмитрий', 'Дзмітрый'), S('Микола', 'Николай', 'Мікалай'), S('Андрій', 'Андрей', 'Андрэй'),
        S('Володимир', 'Владимир', 'Уладзімір'), S('Олег', 'Олег', 'Алег'), S('Ігор', 'Игорь', 'Ігар'),
        S('Віктор', 'Виктор', 'Віктар'), S('Юрій', 'Юрий', 'Юрый'), S('Василь', 'Василий', 'Васіль'),
        S('Петро', 'Пётр', 'Пятро'), S('Михайло', 'Михаил', 'Міхаіл'), S('Іван', 'Иван', 'Іван'),
        S('Павло', 'Павел', 'Павел'), S('Богдан', 'Богдан', 'Багдан'), S('Тарас', 'Тарас', 'Тарас'),
        S('Максим', 'Максим', 'Максім'), S('Артем', 'Артём', 'Арцём'), S('Євген', 'Евгений', 'Яўген'),
        S('Денис', 'Денис', 'Дзяніс'), S('Роман', 'Роман', 'Раман'), S('Віталій', 'Виталий', 'Віталь'),
        S('Степан', 'Степан', 'Сцяпан'), S('Григорій', 'Григорий', 'Рыгор'), S('Анатолій', 'Анатолий', 'Анатоль'),
        S('Вадим', 'Вадим', 'Вадзім'), S('Костянтин', 'Константин', 'Канстанцін'), S('Ярослав', 'Ярослав', 'Яраслаў'),
        S('Федір', 'Фёдор', 'Фёдар'), S('Леонід', 'Леонид', 'Леанід'), S('Валерій', 'Валерий', 'Валерый')]
SL_F = [S('Наталія', 'Наталья', 'Наталля'), S('Ольга', 'Ольга', 'Вольга'), S('Тетяна', 'Татьяна', 'Таццяна'),
        S('Ірина', 'Ирина', 'Ірына'), S('Оксана', 'Оксана', 'Аксана'), S('Світлана', 'Светлана', 'Святлана'),
        S('Людмила', 'Людмила', 'Людміла'), S('Галина', 'Галина', 'Галіна'), S('Ганна', 'Анна', 'Ганна'),
        S('Марія', 'Мария', 'Марыя'), S('Катерина', 'Екатерина', 'Кацярына'), S('Юлія', 'Юлия', 'Юлія'),
        S('Вікторія', 'Виктория', 'Вікторыя'), S('Надія', 'Надежда', 'Надзея'), S('Валентина', 'Валентина', 'Валянціна'),
        S('Лариса', 'Лариса', 'Ларыса'), S('Софія', 'София', 'Сафія'), S('Дарина', 'Дарья', 'Дар\'я'),
        S('Анастасія', 'Анастасия', 'Анастасія'), S('Віра', 'Вера', 'Вера'), S('Любов', 'Любовь', 'Любоў'),
        S('Христина', 'Кристина', 'Крысціна'), S('Ніна', 'Нина', 'Ніна'), S('Тамара', 'Тамара', 'Тамара')]
SL_FAM = {
    'UKR': [S('Ткаченко', 'Ткаченко'), S('Бондаренко', 'Бондаренко'), S('Мельник', 'Мельник', 'Мельнік'), S('Шевчук', 'Шевчук'),
            S('Ковальчук', 'Ковальчук'), S('Мороз', 'Мороз', 'Мароз'), S('Литвиненко', 'Литвиненко'), S('Бойко', 'Бойко'),
            S('Поліщук', 'Полищук'), S('Гончаренко', 'Гончаренко'), S('Савченко', 'Савченко'), S('Руденко', 'Руденко'),
            S('Кузьменко', 'Кузьменко'), S('Павленко', 'Павленко'), S('Олійник', 'Олейник'), S('Ткачук', 'Ткачук'),
            S('Марченко', 'Марченко'), S('Кравчук', 'Кравчук'), S('Лисенко', 'Лысенко'), S('Петренко', 'Петренко'),
            S('Романюк', 'Романюк'), S('Гнатюк', 'Гнатюк'), S('Кравченко', 'Кравченко'), S('Яковенко', 'Яковенко'),
            S(('Ковальський', 'Ковальська'), ('Ковальский', 'Ковальская')), S(('Вишневський', 'Вишневська'), ('Вишневский', 'Вишневская')),
            S('Зінченко', 'Зинченко'), S('Остапчук', 'Остапчук'), S('Пономаренко', 'Пономаренко'), S('Гаврилюк', 'Гаврилюк'),
            S('Коломієць', 'Коломиец'), S('Нестеренко', 'Нестеренко')],
    'RUS': [S(None, ('Смирнов', 'Смирнова')), S(None, ('Кузнецов', 'Кузнецова')), S(None, ('Попов', 'Попова')),
            S(None, ('Соколов', 'Соколова')), S(None, ('Лебедев', 'Лебедева')), S(None, ('Морозов', 'Морозова')),
            S(None, ('Волков', 'Волкова')), S(None, ('Новиков', 'Новикова')), S(None, ('Фёдоров', 'Фёдорова')),
            S(None, ('Михайлов', 'Михайлова')), S(None, ('Орлов', 'Орлова')), S(None, ('Егоров', 'Егорова')),
            S(None, ('Семёнов', 'Семёнова')), S(None, ('Голубев', 'Голубева')), S(None, ('Виноградов', 'Виноградова')),
            S(None, ('Воробьёв', 'Воробьёва')), S(None, ('Захаров', 'Захарова')), S(None, ('Зайцев', 'Зайцева')),
            S(None, ('Соловьёв', 'Соловьёва')), S(None, ('Белов', 'Белова')), S(None, ('Медведев', 'Медведева')),
            S(None, ('Жуков', 'Жукова')), S(None, ('Чернов', 'Чернова')), S(None, ('Щербаков', 'Щербакова'))],
    'BLR': [S(None, 'Новик', 'Новік'), S(None, 'Жук', 'Жук'), S(None, ('Козлов', 'Козлова'), ('Казлоў', 'Казлова')),
            S(None, ('Мельников', 'Мельникова'), ('Мельнікаў', 'Мельнікава')), S(None, ('Ковалёв', 'Ковалёва'), ('Кавалёў', 'Кавалёва')),
            S(None, 'Лукашевич', 'Лукашэвіч'), S(None, ('Шиманский', 'Шиманская'), ('Шыманскі', 'Шыманская')),
            S(None, 'Макаревич', 'Макарэвіч'), S(None, 'Климович', 'Клімовіч'), S(None, 'Гриб', 'Грыб'),
            S(None, ('Сосновский', 'Сосновская'), ('Сасноўскі', 'Сасноўская')), S(None, 'Ермоленко', 'Ярмоленка'),
            S(None, 'Бурак', 'Бурак'), S(None, 'Василевич', 'Васілевіч'), S(None, 'Войтович', 'Войтавіч')],
}
SL_PLACES = {
    'UKR': [['Lviv', 'Lwiw', 'Lvov', 'Lemberg', 'Lwów'], ['Dnipro', 'Dnepr', 'Dnipropetrowsk', 'Dnepropetrovsk'],
            ['Zaporizhzhia', 'Saporischschja', 'Zaporozhye', 'Zaporizhia'], ['Mykolaiv', 'Mykolajiw', 'Nikolaev', 'Nikolajew'],
            ['Chernihiv', 'Tschernihiw', 'Chernigov', 'Tschernigow'], ['Poltava', 'Poltawa'], ['Vinnytsia', 'Winnyzja', 'Vinnitsa'],
            ['Kherson', 'Cherson'], ['Mariupol', 'Mariupol\''], ['Zhytomyr', 'Schytomyr', 'Zhitomir', 'Shitomir'],
            ['Ternopil', 'Ternopol', 'Tarnopol'], ['Rivne', 'Riwne', 'Rovno'], ['Uzhhorod', 'Uschhorod', 'Ungwar', 'Uzhgorod'],
            ['Sumy', 'Sumi'], ['Luhansk', 'Lugansk', 'Luhansk']],
    'RUS': [['Moskva', 'Moskau', 'Moscow', 'Moscou'], ['Sankt-Peterburg', 'St. Petersburg', 'Sankt Petersburg', 'Leningrad'],
            ['Rostov-na-Donu', 'Rostow am Don', 'Rostov-on-Don'], ['Kazan', 'Kasan', 'Kazan\''], ['Novosibirsk', 'Nowosibirsk'],
            ['Yekaterinburg', 'Jekaterinburg', 'Ekaterinburg', 'Swerdlowsk'], ['Nizhny Novgorod', 'Nischni Nowgorod', 'Gorki'],
            ['Samara', 'Kuibyschew'], ['Krasnodar', 'Krasnodar'], ['Wolgograd', 'Volgograd', 'Stalingrad']],
    'BLR': [['Minsk', 'Mensk'], ['Homiel', 'Gomel', 'Homel'], ['Hrodna', 'Grodno', 'Garten'], ['Mahiliou', 'Mogilev', 'Mogiljow', 'Mahilyow'],
            ['Vitsebsk', 'Vitebsk', 'Witebsk'], ['Brest', 'Brest-Litowsk', 'Brześć'], ['Babruisk', 'Bobruisk', 'Babrujsk'],
            ['Pinsk', 'Pinsk']],
}

# -- Tigrinya / Amharic (Ge'ez) --  family = father's given name
GZ_M = ['täsfay', 'yonas', 'dawit', 'yohannəs', 'mulugeta', 'bərhanä', 'gäbrä+mädhən', 'täxlä', 'kidanä', 'mäḥari',
        'habtom', 'sämärä', 'filmon', 'amanuʾel', 'täwäldä', 'wäldu', 'gərmay', 'binyam', 'kəbrom', 'zärʾay', 'ṣägay',
        'abäbä', 'getačäw', 'tadässä', 'bäqälä', 'alämayähu', 'käbbädä', 'mängəstu', 'wärqu', 'dästa', 'haylä',
        'yəmanä', 'ḥagos', 'mäsfən', 'täsfa+mikaʾel', 'tämäsgän', 'nəgusse', 'fəṣum', 'gäbrä+yäsus', 'ḥabtä+ṣəyon', 'asmärom', 'bäraxi']
GZ_F = ['sänayt', 'saba', 'ḥəywät', 'sälam', 'luwam', 'wənta', 'yordanos', 'meron', 'fəräwäyni', 'ṣäga', 'raḥel',
        'almaz', 'təʿgəst', 'mäQdäs', 'edän', 'betälhem', 'ḥanna', 'aster', 'abrəhet', 'kəbra', 'ṣəgäreda', 'feven',
        'danayt', 'məḥrät', 'ʾelsa', 'sämhar', 'tərhas', 'ṣəge']
GZ_PLACES = {
    'ERI': [['Asmara', 'Asmera', 'ኣስመራ'], ['Keren', 'Cheren', 'ከረን'], ['Massawa', 'Mitsiwa', 'Massaua', 'ምጽዋዕ'],
            ['Mendefera', 'Adi Ugri', 'መንደፈራ'], ['Dekemhare', 'Dekemhere', 'ደቀምሓረ'], ['Barentu', 'ባረንቱ'],
            ['Assab', 'Aseb', 'ዓሰብ'], ['Adi Keyh', 'Adi Keih', 'ዓዲ ቀይሕ']],
    'ETH': [['Addis Abeba', 'Addis Ababa', 'አዲስ አበባ'], ['Mekelle', 'Mekele', "Mek'ele", 'መቐለ'], ['Gondar', 'Gonder', 'ጎንደር'],
            ['Bahir Dar', 'Bahar Dar', 'ባሕር ዳር'], ['Dire Dawa', 'Dire Daua', 'ድሬዳዋ'], ['Adigrat', 'ዓዲግራት'],
            ['Aksum', 'Axum', 'ኣክሱም'], ['Hawassa', 'Awassa', 'Awasa'], ['Jimma', 'Dschimma', 'Jima'], ['Shire', 'Inda Selassie', 'Shire Inda Selassie']],
}
# -- Somali --  family = father's given name
SO_M = ['cabdi', 'cali', 'cumar', 'xasan', 'cabdiraxmaan', 'cabdullaahi', 'ibraahim', 'ismaaciil', 'faarax', 'jaamac',
        'warsame', 'nuur', 'aadan', 'shire', 'guuleed', 'cilmi', 'muuse', 'cusmaan', 'xirsi', 'daahir', 'bashiir',
        'maxamuud', 'cabdiqaadir', 'abshir', 'mahad', 'liibaan', 'khadar', 'jibriil', 'yaasiin', 'saciid', 'ayaanle',
        'barre', 'geeddi', 'xaaji', 'siyaad', 'dalmar', 'cawil', 'qaalib']
SO_F = ['xaliimo', 'hodan', 'ayaan', 'sahra', 'ifrax', 'hibo', 'nimco', 'sagal', 'ubax', 'caasha', 'khadiijo', 'deeqa',
        'hawo', 'safiya', 'shukri', 'sucaad', 'luul', 'istar', 'fardowsa', 'hamdi', 'ikraan', 'nasra', 'sacdiyo',
        'filsan', 'muna', 'anab', 'idil', 'zamzam', 'ruqiya', 'qamar']
SO_PLACES = {
    'SOM': [['Mogadischu', 'Mogadishu', 'Muqdisho', 'Mogadiscio'], ['Hargeysa', 'Hargeisa', 'Hargeisa'],
            ['Kismaayo', 'Kismayo', 'Chisimaio', 'Kismaju'], ['Baydhabo', 'Baidoa', 'Baydhaba'], ['Boosaaso', 'Bosaso', 'Bossaso'],
            ['Gaalkacyo', 'Galkayo', 'Galcaio'], ['Beledweyne', 'Beled Weyne', 'Belet Uen'], ['Marka', 'Merca', 'Merka'],
            ['Garoowe', 'Garowe'], ['Burco', 'Burao', 'Burcao']],
}


# ---------------------------------------------------------------------------
class Pool:
    def __init__(self, code):
        self.code = code
        self.dropped = []


def build_pools():
    P = {}
    for tbl in (AR_PLACES, FA_PLACES, YU_PLACES, TK_PLACES, SL_PLACES, GZ_PLACES, SO_PLACES):
        for c in tbl:
            # offices write birth places in Latin letters; drop script forms and duplicates
            tbl[c] = [[v for j, v in enumerate(pl) if is_latin(v) and v not in pl[:j]] for pl in tbl[c]]
    # Arabic
    p = Pool('arabic')
    p.countries = [('SYR', 40), ('IRQ', 25), ('EGY', 12), ('SDN', 10), ('MAR', 13)]
    p.male = ents('ar', 'g', AR_M)
    p.female = ents('ar', 'g', AR_F)
    p.family = {c: ents('ar', 'f', v) for c, v in AR_FAM.items()}
    p.places = AR_PLACES
    P['arabic'] = p
    # Persian
    p = Pool('persian')
    p.countries = [('AFG', 55), ('IRN', 45)]
    p.male = ents('fa', 'g', FA_M)
    p.female = ents('fa', 'g', FA_F)
    p.family = {c: ents('fa', 'f', v) for c, v in FA_FAM.items()}
    p.places = FA_PLACES
    P['persian'] = p
    # BCS
    p = Pool('bcs')
    p.eths = [('s', 45), ('b', 35), ('c', 20)]
    p.male = {e: ents('yu', 'g', v, eth=e) for e, v in YU_M.items()}
    p.female = {e: ents('yu', 'g', v, eth=e) for e, v in YU_F.items()}
    p.family = {e: ents('yu', 'f', v, eth=e) for e, v in YU_FAM.items()}
    p.places = YU_PLACES
    P['bcs'] = p
    # Turkish / Kurdish
    p = Pool('turkish_kurdish')
    p.male = {'t': ents('tk', 'g', TK_M), 'k': ents('tk', 'g', KU_M, ku=True)}
    p.female = {'t': ents('tk', 'g', TK_F), 'k': ents('tk', 'g', KU_F, ku=True)}
    p.family = {'t': ents('tk', 'f', TK_FAM), 'k': ents('tk', 'f', KU_FAM, ku=True)}
    p.places = TK_PLACES
    P['turkish_kurdish'] = p
    # East Slavic
    p = Pool('east_slavic')
    p.countries = [('UKR', 60), ('RUS', 25), ('BLR', 15)]
    p.male = ents('sl', 'g', SL_M)
    p.female = ents('sl', 'g', SL_F)
    p.family = {c: ents('sl', 'f', v) for c, v in SL_FAM.items()}
    p.places = SL_PLACES
    P['east_slavic'] = p
    # Ge'ez
    p = Pool('tigrinya_amharic')
    p.countries = [('ERI', 60), ('ETH', 40)]
    p.male = ents('gz', 'g', GZ_M)
    p.female = ents('gz', 'g', GZ_F)
    p.places = GZ_PLACES
    P['tigrinya_amharic'] = p
    # Somali
    p = Pool('somali')
    p.countries = [('SOM', 1)]
    p.male = ents('so', 'g', SO_M)
    p.female = ents('so', 'g', SO_F)
    p.places = SO_PLACES
    P['somali'] = p
    return P


POOL_WEIGHTS = [('arabic', 22), ('bcs', 14), ('turkish_kurdish', 15), ('persian', 15), ('east_slavic', 15),
                ('tigrinya_amharic', 11), ('somali', 8)]
PATRONYMIC_POOLS = {'tigrinya_amharic', 'somali'}


# ---------------------------------------------------------------------------
# Rendering of names per pool
# ---------------------------------------------------------------------------
def new_style(pool, person, rng):
    c = pool.code
    if c == 'arabic':
        nat = person['nat']
        if rng.random() < 0.18:
            return {'script': True, 'seed': rng.randrange(10 ** 9), 'allah_sep': wpick(rng, [('', 3), (' ', 1)])}
        lang = {'SYR': [('en', 5), ('de', 4), ('fr', 1)], 'IRQ': [('en', 6), ('de', 4)],
                'EGY': [('eg', 6), ('en', 3), ('de', 1)], 'SDN': [('en', 7), ('de', 2), ('eg', 1)],
                'MAR': [('fr', 8), ('de', 2), ('en', 1)]}[nat]
        st = ap_style(rng, wpick(rng, lang), nat, False)
        st['script'] = False
        return st
    if c == 'persian':
        if rng.random() < 0.18:
            st = {'script': True, 'seed': rng.randrange(10 ** 9), 'allah_sep': wpick(rng, [('\u200c', 5), (' ', 3), ('', 1)])}
            return st
        st = ap_style(rng, wpick(rng, [('en', 6), ('de', 3), ('fr', 1)]), person['nat'], True)
        st['script'] = False
        return st
    if c == 'bcs':
        return bcs_style(rng, person)
    if c == 'turkish_kurdish':
        return tk_style(rng, person)
    if c == 'east_slavic':
        return sl_style(rng, person)
    if c == 'tigrinya_amharic':
        return gz_style(rng, person)
    if c == 'somali':
        return so_style(rng, person)


def render_name(pool, ent, st, sex):
    c = pool.code
    if c in ('arabic', 'persian'):
        persian = c == 'persian'
        if st['script']:
            return ap_script(ent['c'], persian, st.get('allah_sep', ''))
        return ap_latin(ent['c'], st, persian)
    if c == 'bcs':
        return bcs_render(ent['c'], st)
    if c == 'turkish_kurdish':
        return tk_render(ent, st)
    if c == 'east_slavic':
        return sl_render(ent, st, sex)
    if c == 'tigrinya_amharic':
        return gz_render(ent['c'], st)
    if c == 'somali':
        return so_render(ent['c'], st)


# ---------------------------------------------------------------------------
# Collision check against the shared files
# ---------------------------------------------------------------------------
ARTICLES = {'al', 'el', 'ال', 'ul', 'ad', 'as', 'an', 'ar', 'at', 'ash', 'az', 'ben', 'bin', 'ibn', 'abd', 'abdul', 'abdel'}


def norm_tok(t):
    t = strip_marks(t.casefold()).replace("'", '').replace('’', '')
    for a in ('ال',):
        if t.startswith(a) and len(t) > 3:
            t = t[2:]
    return t


def tokens_of(s):
    out = []
    for t in s.replace('-', ' ').replace('\u200c', ' ').split():
        for sub in (t, t.replace("'", '')):
            n = norm_tok(sub)
            if len(n) > 2 and n not in ARTICLES:
                out.append(n)
            if n.startswith('al') and len(n) > 4:
                out.append(n[2:])
            if n.startswith('el') and len(n) > 4:
                out.append(n[2:])
    return out


def lev1(a, b):
    if abs(len(a) - len(b)) > 1:
        return False
    if a == b:
        return True
    if len(a) == len(b):
        d = [i for i in range(len(a)) if a[i] != b[i]]
        return len(d) == 1 or (len(d) == 2 and d[1] == d[0] + 1 and a[d[0]] == b[d[1]] and a[d[1]] == b[d[0]])
    if len(a) > len(b):
        a, b = b, a
    for i in range(len(b)):
        if b[:i] + b[i + 1:] == a:
            return True
    return False


def load_train_tokens():
    toks = set()
    for f in SHARED:
        with open(f, encoding='utf-8') as fh:
            for r in csv.DictReader(fh, delimiter='\t'):
                for s in 'ab':
                    for col in ('given', 'family'):
                        toks.update(tokens_of(r[s + '_' + col]))
    return toks


def all_spellings(pool, ent, rng, k=120):
    out = set()
    fake = {'nat': None, 'eth': ent.get('eth', 's'), 'sex': 'M'}
    countries = [c for c, _ in getattr(pool, 'countries', [])] or list(pool.places)
    for i in range(k):
        fake['nat'] = countries[i % len(countries)]
        fake['eth'] = 'k' if ent.get('ku') else ent.get('eth', 's')
        if pool.code == 'turkish_kurdish':
            fake['nat'] = 'TUR' if i % 2 else 'SYR'
        st = new_style(pool, fake, rng)
        for sex in ('M', 'F'):
            out.add(render_name(pool, ent, st, sex))
    if pool.code == 'east_slavic':
        for lang in ('uk', 'ru', 'be'):
            for sysn in ('cyr', 'nat', 'bgn', 'de', 'sci', 'en'):
                for sex in ('M', 'F'):
                    st = {'lang': lang, 'sys': sysn, 'y_i': 'y', 'iy_en': 'y', 'ij_de': 'j', 'x': True, 'seed': 1}
                    if sl_form(ent, lang, sex):
                        out.add(sl_render(ent, st, sex))
    return out


def check_collisions(pools, rng):
    train = load_train_tokens()
    report = []

    def bad(pool, ent):
        for sp in all_spellings(pool, ent, rng):
            for t in tokens_of(sp):
                if t in train:
                    return sp, t
                if len(t) >= 5:
                    for u in train:
                        if len(u) >= 5 and lev1(t, u):
                            return sp, u
        return None

    def filt(pool, lst):
        keep = []
        for e in lst:
            b = bad(pool, e)
            if b:
                report.append((pool.code, e['id'], b[0], b[1]))
            else:
                keep.append(e)
        return keep

    for pool in pools.values():
        for attr in ('male', 'female', 'family'):
            v = getattr(pool, attr, None)
            if v is None:
                continue
            if isinstance(v, dict):
                for k in v:
                    v[k] = filt(pool, v[k])
            else:
                setattr(pool, attr, filt(pool, v))
    return report, train


# ---------------------------------------------------------------------------
# Persons
# ---------------------------------------------------------------------------
def rand_date(rng, y):
    m = rng.randint(1, 12)
    d = rng.randint(1, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1])
    return m, d


def pick_given(pool, person, rng, exclude=()):
    sex = person['sex']
    if pool.code == 'bcs':
        lst = (pool.male if sex == 'M' else pool.female)[person['eth']]
    elif pool.code == 'turkish_kurdish':
        grp = person['eth']
        if grp == 'k' and person['nat'] == 'TUR' and rng.random() < 0.25:
            grp = 't'
        lst = (pool.male if sex == 'M' else pool.female)[grp]
    else:
        lst = pool.male if sex == 'M' else pool.female
    ex = {e['id'] for e in exclude}
    cand = [e for e in lst if e['id'] not in ex]
    return rng.choice(cand)


def pick_family(pool, person, rng, exclude=()):
    ex = {e['id'] for e in exclude}
    if pool.code in PATRONYMIC_POOLS:
        lst = pool.male
    elif pool.code == 'bcs':
        lst = pool.family[person['eth']]
    elif pool.code == 'turkish_kurdish':
        lst = pool.family['k'] if person['eth'] == 'k' and person['nat'] != 'TUR' else pool.family['t']
    elif pool.code == 'east_slavic':
        nat = person['nat']
        lst = pool.family[nat] if rng.random() < 0.85 else pool.family['UKR'] if nat != 'UKR' else pool.family['RUS']
        if nat == 'UKR' and lst is pool.family['RUS']:
            lst = pool.family['UKR']
    else:
        lst = pool.family[person['nat']]
    cand = [e for e in lst if e['id'] not in ex]
    return rng.choice(cand)


def pick_place(pool, nat, rng):
    return rng.choice(pool.places[nat])


def new_person(pool, rng, sex=None, nat=None, eth=None):
    p = {'pool': pool.code}
    if pool.code == 'bcs':
        p['eth'] = eth or wpick(rng, pool.eths)
        p['nat'] = nat or wpick(rng, YU_NAT[p['eth']])
    elif pool.code == 'turkish_kurdish':
        p['eth'] = eth or wpick(rng, [('t', 55), ('k', 45)])
        p['nat'] = nat or ('TUR' if p['eth'] == 't' else wpick(rng, [('TUR', 50), ('SYR', 30), ('IRQ', 20)]))
    else:
        p['eth'] = None
        p['nat'] = nat or wpick(rng, pool.countries)
    p['sex'] = sex or rng.choice('MF')
    p['given'] = [pick_given(pool, p, rng)]
    if rng.random() < 0.05:
        add_second_given(pool, p, rng)
    p['family'] = pick_family(pool, p, rng, exclude=p['given'])
    if pool.code in PATRONYMIC_POOLS:
        p['grandfather'] = pick_family(pool, p, rng, exclude=p['given'] + [p['family']])
    p['year'] = rng.randint(1952, 2016)
    p['known'] = rng.random() < 0.72
    p['m'], p['d'] = rand_date(rng, p['year'])
    p['place'] = pick_place(pool, p['nat'], rng)
    return p


def add_second_given(pool, p, rng):
    if pool.code == 'east_slavic':
        father = rng.choice(pool.male)
        p['given'].append(patronymic(father, p['sex']))
    elif pool.code in PATRONYMIC_POOLS:
        p['given'].append(pick_given(pool, p, rng, exclude=p['given']))
    else:
        p['given'].append(pick_given(pool, p, rng, exclude=p['given']))


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------
def fmt_date(p, mode):
    y, m, d = p['year'], p['m'], p['d']
    if mode == 'full':
        return '%04d-%02d-%02d' % (y, m, d)
    if mode == 'swap':
        return '%04d-%02d-%02d' % (y, d, m)
    if mode == 'ph':
        return '%04d-01-01' % y
    if mode == 'ym':
        return '%04d-%02d' % (y, m)
    if mode == 'ym1':
        return '%04d-01' % y
    if mode == 'y':
        return '%04d' % y
    raise ValueError(mode)


def default_date_mode(p, rng):
    if p['known']:
        return wpick(rng, [('full', 80), ('ph', 9), ('y', 7), ('ym', 4)])
    return wpick(rng, [('ph', 80), ('y', 14), ('ym1', 6)])


def new_spec(pool, p, rng):
    st = new_style(pool, p, rng)
    return {'style_g': st, 'style_f': st, 'swap': False, 'n_given': len(p['given']), 'typos': [],
            'place': 'main', 'place_var': place_variant_index(p['place'], rng), 'date': default_date_mode(p, rng),
            'grandfather': False}


def place_variant_index(place, rng):
    if rng.random() < 0.5:
        return 0
    return rng.randrange(len(place))


def apply_typo(s, kind, seed):
    r = random.Random(seed)
    idx = [i for i, ch in enumerate(s) if ch.isalpha()]
    if len(idx) < 3:
        return s
    if kind == 'transpose':
        cand = [i for i in idx[:-1] if i + 1 < len(s) and s[i + 1].isalpha() and s[i] != s[i + 1]]
        if not cand:
            return s
        i = r.choice(cand)
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if kind == 'drop':
        i = r.choice(idx[1:])
        return s[:i] + s[i + 1:]
    if kind == 'double':
        i = r.choice(idx[1:])
        return s[:i] + s[i] + s[i:]
    return s


def render_record(pool, p, spec):
    sex = p['sex']
    given = ' '.join(render_name(pool, e, spec['style_g'], sex) for e in p['given'][:spec['n_given']])
    family = render_name(pool, p['family'], spec['style_f'], sex)
    if spec['grandfather'] and p.get('grandfather'):
        family = family + ' ' + render_name(pool, p['grandfather'], spec['style_f'], sex)
    for field, kind, seed in spec['typos']:
        if field == 'g':
            given = apply_typo(given, kind, seed)
        else:
            family = apply_typo(family, kind, seed)
    if spec['swap']:
        given, family = family, given
    if spec['place'] == 'none':
        place = ''
    else:
        place = p['place'][spec['place_var']]
    return [given, family, fmt_date(p, spec['date']), place, p['nat'], sex]


# ---------------------------------------------------------------------------
# Pair kinds
# ---------------------------------------------------------------------------
SAME_OPS = [('restyle', 34), ('typo', 15), ('swap', 6.5), ('extra_given', 10), ('place_missing', 8),
            ('place_respell', 10), ('date', 17)]


def is_script(st):
    return bool(st.get('script')) or st.get('sys') == 'cyr'


def make_same(pool, rng):
    p = new_person(pool, rng)
    a = new_spec(pool, p, rng)
    if a['date'] in ('y', 'ym') and p['known']:
        a['date'] = 'full'
    b = dict(a)
    b['typos'] = []
    if rng.random() < 0.03:
        a['place'] = b['place'] = 'none'
    k = wpick(rng, [(1, 40), (2, 40), (3, 20)])
    ops = []
    while len(ops) < k:
        op = wpick(rng, SAME_OPS)
        if op in ops and op not in ('typo', 'restyle'):
            continue
        ops.append(op)
    for op in ops:
        side = rng.choice([a, b])
        other = b if side is a else a
        if op == 'restyle':
            st = new_style(pool, p, rng)
            which = wpick(rng, [('both', 6), ('g', 2), ('f', 2)])
            if is_script(st) or is_script(side['style_g']) or is_script(side['style_f']):
                which = 'both'  # an office does not mix scripts within one record
            if which in ('both', 'g'):
                side['style_g'] = st
            if which in ('both', 'f'):
                side['style_f'] = st
        elif op == 'typo':
            side['typos'] = side['typos'] + [(rng.choice('gf'), wpick(rng, [('transpose', 5), ('drop', 3), ('double', 2)]),
                                              rng.randrange(10 ** 9))]
        elif op == 'swap':
            side['swap'] = True
        elif op == 'extra_given':
            if pool.code in PATRONYMIC_POOLS and rng.random() < 0.6:
                side['grandfather'] = True
            else:
                if len(p['given']) == 1:
                    add_second_given(pool, p, rng)
                side['n_given'] = 2
                other['n_given'] = 1
        elif op == 'place_missing':
            side['place'] = 'none'
        elif op == 'place_respell':
            alts = [i for i in range(len(p['place'])) if i != other['place_var']]
            if alts:
                side['place_var'] = rng.choice(alts)
            else:
                side['place'] = 'none'
        elif op == 'date':
            if p['known']:
                opts = [('ph', 40), ('y', 22), ('ym', 14)]
                if p['d'] <= 12 and p['d'] != p['m']:
                    opts.append(('swap', 70))
                side['date'] = wpick(rng, opts)
                if other['date'] != 'full' and rng.random() < 0.7:
                    other['date'] = 'full'
            else:
                side['date'] = wpick(rng, [('y', 3), ('ym1', 1)])
                other['date'] = 'ph'
    # make sure both records show n_given <= len
    for s in (a, b):
        s['n_given'] = min(s['n_given'], len(p['given']))
    return p, p, a, b


def neg_spec(pool, p, rng):
    s = new_spec(pool, p, rng)
    if rng.random() < 0.06:
        s['swap'] = True
    if rng.random() < 0.07:
        s['place'] = 'none'
    if rng.random() < 0.08:
        s['typos'] = [(rng.choice('gf'), wpick(rng, [('transpose', 5), ('drop', 3), ('double', 2)]), rng.randrange(10 ** 9))]
    if pool.code in PATRONYMIC_POOLS and rng.random() < 0.05:
        s['grandfather'] = True
    return s


def clone_person(p):
    q = dict(p)
    q['given'] = list(p['given'])
    return q


def make_namesake(pool, rng):
    p = new_person(pool, rng)
    q = clone_person(p)
    gap = rng.randint(2, 15)
    q['year'] = p['year'] + gap if p['year'] + gap <= 2018 or rng.random() < 0.5 else p['year'] - gap
    if q['year'] > 2019:
        q['year'] = p['year'] - gap
    if rng.random() < 0.15:
        q['m'], q['d'] = rand_date(rng, q['year'])
    q['known'] = rng.random() < 0.72
    if rng.random() < 0.5:
        q['place'] = pick_place(pool, q['nat'], rng)
    if pool.code in PATRONYMIC_POOLS:
        q['grandfather'] = pick_family(pool, q, rng, exclude=q['given'] + [q['family']])
    return p, q, neg_spec(pool, p, rng), neg_spec(pool, q, rng)


def make_sibling(pool, rng):
    p = new_person(pool, rng)
    q = clone_person(p)
    q['sex'] = p['sex'] if rng.random() < 0.4 else ('F' if p['sex'] == 'M' else 'M')
    q['given'] = [pick_given(pool, q, rng, exclude=p['given'] + [p['family']])]
    if rng.random() < 0.08:
        add_second_given(pool, q, rng)
    gap = rng.randint(1, 6)
    q['year'] = p['year'] + gap * rng.choice([-1, 1])
    q['m'], q['d'] = rand_date(rng, q['year'])
    q['known'] = rng.random() < 0.72
    return p, q, neg_spec(pool, p, rng), neg_spec(pool, q, rng)


def make_placeholder(pool, rng):
    p = new_person(pool, rng)
    p['known'] = False
    q = new_person(pool, rng, sex=p['sex'], nat=p['nat'], eth=p['eth'])
    q['given'] = [p['given'][0]] + (q['given'][1:] if len(q['given']) > 1 and rng.random() < 0.5 else [])
    q['family'] = pick_family(pool, q, rng, exclude=[p['family']] + q['given'])
    q['year'] = p['year']
    q['known'] = False
    sa, sb = neg_spec(pool, p, rng), neg_spec(pool, q, rng)
    for s in (sa, sb):
        s['date'] = wpick(rng, [('ph', 82), ('y', 13), ('ym1', 5)])
    return p, q, sa, sb


def make_other(pool, rng):
    p = new_person(pool, rng)
    q = clone_person(p)
    q['given'] = [pick_given(pool, q, rng, exclude=p['given'] + [p['family']])]
    q['m'], q['d'] = rand_date(rng, q['year'])
    q['known'] = rng.random() < 0.72
    q['place'] = pick_place(pool, q['nat'], rng)
    if rng.random() < 0.35:
        # two-part given name whose SECOND part is the other person's given name
        p['given'] = [p['given'][0]]
        q['given'] = [q['given'][0], p['given'][0]]
    if pool.code in PATRONYMIC_POOLS:
        q['grandfather'] = pick_family(pool, q, rng, exclude=q['given'] + [q['family']])
    neighbours = [c for c in getattr(pool, 'countries', [])
                  if pool.code != 'arabic' or (c[0] in ('SYR', 'IRQ') and p['nat'] in ('SYR', 'IRQ'))]
    if len(neighbours) > 1 and rng.random() < 0.3:
        q['nat'] = wpick(rng, neighbours)
        q['place'] = pick_place(pool, q['nat'], rng)
    sa, sb = neg_spec(pool, p, rng), neg_spec(pool, q, rng)
    sa['n_given'] = len(p['given'])
    sb['n_given'] = len(q['given'])
    if rng.random() < 0.5:
        sa, sb = sb, sa
        p, q = q, p
    return p, q, sa, sb


MAKERS = {'same': make_same, 'namesake': make_namesake, 'sibling': make_sibling,
          'placeholder': make_placeholder, 'other': make_other}


def main():
    rng = random.Random(SEED)
    pools = build_pools()
    report, train = check_collisions(pools, random.Random(SEED + 1))
    tot = sum(w for _, w in KIND_SHARE)
    counts = {k: round(N_PAIRS * w / tot) for k, w in KIND_SHARE}
    counts['same'] += N_PAIRS - sum(counts.values())
    kinds = [k for k, n in counts.items() for _ in range(n)]
    rng.shuffle(kinds)
    rows = []
    pool_of = []
    for i, kind in enumerate(kinds):
        pname = wpick(rng, POOL_WEIGHTS)
        pool = pools[pname]
        for attempt in range(50):
            p, q, sa, sb = MAKERS[kind](pool, rng)
            ra = render_record(pool, p, sa)
            rb = render_record(pool, q, sb)
            if kind != 'same' and ra[:4] == rb[:4]:
                continue
            if kind == 'same' and ra == rb and rng.random() < 0.9:
                continue
            break
        if rng.random() < 0.5:
            ra, rb = rb, ra
        label = '1' if kind == 'same' else '0'
        rows.append(['p%05d' % i, label, kind] + ra + rb)
        pool_of.append(pname)
    # final safety net: no output token may be a train token
    leaks = set()
    for r in rows:
        for v in (r[3], r[4], r[9], r[10]):
            for t in tokens_of(v):
                if t in train:
                    leaks.add((v, t))
    with open(OUT, 'w', encoding='utf-8', newline='') as fh:
        w = csv.writer(fh, delimiter='\t', lineterminator='\n', quoting=csv.QUOTE_NONE, escapechar='\\')
        w.writerow(HEADER)
        w.writerows(rows)
    with open(os.path.join(HERE, 'pools.tsv'), 'w', encoding='utf-8') as fh:
        fh.write('pair_id\tpool\n')
        for r, pn in zip(rows, pool_of):
            fh.write('%s\t%s\n' % (r[0], pn))
    with open(os.path.join(HERE, 'dropped_names.tsv'), 'w', encoding='utf-8') as fh:
        fh.write('pool\tname_id\tgenerated_spelling\tcolliding_train_token\n')
        for x in report:
            fh.write('\t'.join(x) + '\n')
    print('wrote', OUT, len(rows), 'pairs; dropped', len(report), 'names; token leaks after typos:', len(leaks), file=sys.stderr)
    for l in sorted(leaks)[:20]:
        print('  leak', l, file=sys.stderr)


if __name__ == '__main__':
    main()
