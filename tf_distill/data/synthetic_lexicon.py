"""The vocabulary of the synthetic corpus: English words, their French translations, classes.

Tables are plain text, one entry a line, `|` between columns, parsed once at import.
French alternatives are separated by `;`, each with an optional `=weight`: the first is the
translation at `ambiguity=0`, the weights are the fixed probabilities at `ambiguity=1`.
Underscores stand for spaces inside one word (`pomme_de_terre`).

Noun classes (tags): P person, J profession (a person one can *be*), A animal, F countable
food, M mass food, D drink, R something to read or write, V vehicle, T thing, U a thing
with a surface (on / under), L place, Q question / problem / lesson, S something to listen
to, G game or sport, I musical instrument, N language.
"""

from tf_distill.data.synthetic_morphology import (
    conjugate,
    english_gerund,
    english_past,
    english_plural,
    english_third_singular,
    french_adjective_forms,
    french_plural,
)

_NOUNS = """
boy | garçon m | P
girl | fille f | P
man/men | homme m | P
woman/women | femme f | P
child/children | m:enfant f:enfant | P
baby | bébé m | P
father | père m | P
mother | mère f | P
brother | frère m | P
sister | sœur f | P
son | fils/fils m | P
daughter | fille f | P
uncle | oncle m | P
aunt | tante f | P
grandfather | grand-père/grands-pères m | P
grandmother | grand-mère/grands-mères f | P
husband | mari m | P
friend | m:ami f:amie =0.7; m:copain f:copine =0.3 | P
neighbor | m:voisin f:voisine | P
cousin | m:cousin f:cousine | P
guest | m:invité f:invitée | P
customer | m:client f:cliente | P
tourist | m:touriste f:touriste | P
king | roi m | P
queen | reine f | P
teacher | m:professeur f:professeure =0.6; m:enseignant f:enseignante =0.4 | PJ
student | m:élève f:élève =0.6; m:étudiant f:étudiante =0.4 | PJ
doctor | m:médecin f:médecin =0.7; m:docteur f:docteure =0.3 | PJ
nurse | m:infirmier f:infirmière | PJ
cook | m:cuisinier f:cuisinière | PJ
farmer | m:fermier f:fermière =0.6; m:agriculteur f:agricultrice =0.4 | PJ
baker | m:boulanger f:boulangère | PJ
singer | m:chanteur f:chanteuse | PJ
lawyer | m:avocat f:avocate | PJ
driver | m:chauffeur f:chauffeuse =0.7; m:conducteur f:conductrice =0.3 | PJ
writer | m:écrivain f:écrivaine | PJ
worker | m:ouvrier f:ouvrière | PJ
waiter | serveur m | PJ
waitress | serveuse f | PJ
actor | acteur m | PJ
actress | actrice f | PJ
soldier | m:soldat f:soldate | PJ
engineer | m:ingénieur f:ingénieure | PJ
journalist | m:journaliste f:journaliste | PJ
painter | m:peintre f:peintre | PJ
dog | chien m | A
cat | chat m | A
horse | cheval/chevaux m | A
cow | vache f | A
bird | oiseau m | A
mouse/mice | souris f | A
rabbit | lapin m | A
pig | cochon m | A
duck | canard m | A
lion | lion m | A
tiger | tigre m | A
bear | ours m | A
monkey | singe m | A
elephant | éléphant m | A
wolf/wolves | loup m | A
fox | renard m | A
frog | grenouille f | A
snake | serpent m | A
goat | chèvre f | A
bee | abeille f | A
butterfly | papillon m | A
spider | araignée f | A
turtle | tortue f | A
hen | poule f | A
apple | pomme f | F
pear | poire f | F
orange | orange f | F
banana | banane f | F
cake | gâteau m | F
egg | œuf m | F
sandwich | sandwich m | F
tomato | tomate f | F
potato | pomme_de_terre/pommes_de_terre f | F
carrot | carotte f | F
lemon | citron m | F
strawberry | fraise f | F
cookie | biscuit m =0.6; gâteau_sec/gâteaux_secs m =0.4 | F
pie | tarte f | F
pizza | pizza f | F
sausage | saucisse f | F
onion | oignon m | F
peach | pêche f | F
cherry | cerise f | F
bread | pain m | M
cheese | fromage m | M
rice | riz m | M
meat | viande f | M
chicken | poulet m | M
soup | soupe f =0.7; potage m =0.3 | M
butter | beurre m | M
sugar | sucre m | M
salt | sel m | M
chocolate | chocolat m | M
salad | salade f | M
honey | miel m | M
water | eau f | D
milk | lait m | D
coffee | café m | D
tea | thé m | D
juice | jus m | D
wine | vin m | D
beer | bière f | D
lemonade | limonade f | D
book | livre m | R
letter | lettre f | R
newspaper | journal m | R
magazine | magazine m =0.7; revue f =0.3 | R
story | histoire f | R
poem | poème m | R
novel | roman m | R
message | message m | R
email | courriel m =0.5; e-mail m =0.5 | R
car | voiture f =0.6; auto f =0.4 | V
bus/buses | bus m | V
train | train m | V
bike | vélo m =0.6; bicyclette f =0.4 | V
boat | bateau m | V
plane | avion m | V
truck | camion m | V
taxi | taxi m | V
motorcycle | moto f | V
key | clé f =0.7; clef f =0.3 | T
phone | téléphone m | T
bag | sac m | T
box | boîte f | TU
ball | balle f =0.6; ballon m =0.4 | T
chair | chaise f | TU
table | table f | TU
bed | lit m | TU
lamp | lampe f | T
pen | stylo m | T
pencil | crayon m | T
cup | tasse f | T
glass | verre m | T
plate | assiette f | T
knife/knives | couteau m | T
spoon | cuillère f | T
bottle | bouteille f | T
umbrella | parapluie m | T
hat | chapeau m | T
shirt | chemise f | T
dress | robe f | T
shoe | chaussure f | T
coat | manteau m | T
watch | montre f | T
computer | ordinateur m | T
picture | tableau m =0.6; image f =0.4 | T
photo | photo f | T
window | fenêtre f | T
door | porte f | T
clock | horloge f | T
ring | bague f | T
toy | jouet m | T
gift | cadeau m | T
ticket | billet m =0.7; ticket m =0.3 | T
flower | fleur f | T
wallet | portefeuille m | T
mirror | miroir m | T
doll | poupée f | T
basket | panier m | T
candle | bougie f | T
desk | bureau m | TU
house | maison f | L
school | école f | L
garden | jardin m | L
park | parc m | L
market | marché m | L
station | gare f | L
church | église f | L
hospital | hôpital m | L
library | bibliothèque f | L
museum | musée m | L
restaurant | restaurant m | L
hotel | hôtel m | L
office | bureau m | L
shop | magasin m =0.6; boutique f =0.4 | L
beach | plage f | L
forest | forêt f =0.7; bois/bois m =0.3 | L
river | rivière f =0.7; fleuve m =0.3 | L
city | ville f | L
village | village m | L
farm | ferme f | L
kitchen | cuisine f | L
bedroom | chambre f | L
bank | banque f | L
airport | aéroport m | L
cinema | cinéma m | L
bakery | boulangerie f | L
street | rue f | L
bridge | pont m | L
mountain | montagne f | L
lake | lac m | L
castle | château m | L
zoo | zoo m | L
theater | théâtre m | L
supermarket | supermarché m | L
pharmacy | pharmacie f | L
stadium | stade m | L
island | île f | L
question | question f | Q
problem | problème m | Q
lesson | leçon f =0.7; cours/cours m =0.3 | Q
word | mot m | Q
answer | réponse f | Q
song | chanson f | S
radio | radio f | S
music | musique f | S
football | football m =0.7; foot m =0.3 | G
tennis | tennis m | G
chess | échecs/échecs m | GX
cards | cartes/cartes f | GX
piano | piano m | I
guitar | guitare f | I
violin | violon m | I
drums | batterie f | I
flute | flûte f | I
French | français m | N
English | anglais m | N
Spanish | espagnol m | N
German | allemand m | N
Italian | italien m | N
Chinese | chinois m | N
Japanese | japonais m | N
Russian | russe m | N
Arabic | arabe m | N
Portuguese | portugais m | N
"""

_NAMES = """
Tom | Tom | m
Mary | Marie | f
John | Jean | m
Peter | Pierre | m
Paul | Paul | m
Anna | Anne | f
Helen | Hélène | f
Stephen | Étienne | m
Andrew | André | m
Lucy | Lucie | f
Emily | Émilie | f
Michael | Michel | m
James | Jacques | m
Louis | Louis | m
Sophie | Sophie | f
Julia | Julie | f
Charles | Charles | m
Margaret | Marguerite | f
Henry | Henri | m
Elizabeth | Élisabeth | f
Frances | Françoise | f
Eve | Ève | f
"""

# Prenominal French adjectives are marked `^` (une petite maison, une maison rouge).
_ADJECTIVES = """
red | rouge | AVTL
blue | bleu | AVT
green | vert | AVT
yellow | jaune | AVT
black | noir | AVT
white | blanc,blanche | AVT
gray | gris,grise | AVT
brown | brun =0.5; marron,marron,marron,marron =0.5 | AVT
orange | orange,orange,orange,orange | VT
pink | rose | VT
small | ^petit | PAVTLF
big | ^grand =0.6; ^gros,grosse,gros,grosses =0.4 | AVTLF
tall | ^grand | P
young | ^jeune | PA
old | ^vieux,vieille,vieux,vieilles,vieil =0.7; âgé =0.3 | PA
old | ^vieux,vieille,vieux,vieilles,vieil | VTL
new | ^nouveau,nouvelle,nouveaux,nouvelles,nouvel =0.6; neuf,neuve =0.4 | VTRL
beautiful | ^beau,belle,beaux,belles,bel | PAVTL
pretty | ^joli =0.6; mignon,mignonne =0.4 | PTL
good | ^bon,bonne | RFMDQ
bad | ^mauvais,mauvaise,mauvais | RFMDQ
tired | fatigué | PA
happy | heureux,heureuse,heureux,heureuses =0.6; content =0.4 | PA
sad | triste | PA
sick | malade | PA
angry | fâché =0.6; furieux,furieuse,furieux,furieuses =0.4 | PA
busy | occupé | P
rich | riche | P
poor | pauvre | P
famous | célèbre =0.7; connu =0.3 | PL
kind | gentil,gentille | P
lazy | paresseux,paresseuse,paresseux,paresseuses | PA
strong | fort | PA
brave | courageux,courageuse,courageux,courageuses | P
funny | drôle =0.7; amusant =0.3 | PAR
serious | sérieux,sérieuse,sérieux,sérieuses | P
curious | curieux,curieuse,curieux,curieuses | PA
polite | poli | P
intelligent | intelligent | PA
clever | malin,maligne =0.5; intelligent =0.5 | PA
quiet | calme =0.6; tranquille =0.4 | PAL
noisy | bruyant | PAL
dangerous | dangereux,dangereuse,dangereux,dangereuses | AVL
fast | rapide | AV
slow | lent | AV
clean | propre | VTL
dirty | sale | VTL
expensive | cher,chère | VTFL
cheap | bon_marché,bon_marché,bon_marché,bon_marché | VTF
heavy | lourd | TV
light | léger,légère | T
empty | vide | TL
full | plein | TL
broken | cassé | TV
delicious | délicieux,délicieuse,délicieux,délicieuses | FMD
sweet | sucré | FMD
hot | chaud | MD
cold | froid | MD
fresh | frais,fraîche,frais,fraîches | FMD
interesting | intéressant | RQ
boring | ennuyeux,ennuyeuse,ennuyeux,ennuyeuses | RQ
long | ^long,longue | RQ
short | court | RQ
easy | facile | Q
difficult | difficile | Q
strange | étrange =0.6; bizarre =0.4 | PARQT
large | vaste | L
"""

# English column: verb and particle (`wait for`). French column: infinitive (`*` = être in
# the past) and preposition. Frames: tr (direct object), in (no object), go (motion to an
# optional destination), gv (object and a person: give X to Y). Flags: g = generic
# object (English "I like apples" -> French "J'aime les pommes"), s = stative (no -ing),
# b = a language object without article in French (parler français).
_VERBS = """
eat | manger | tr | PA | FM |
have | avoir | tr | P | AVTFIR | s
drink | boire | tr | PA | D |
cook | cuisiner =0.5; préparer =0.5 | tr | P | FM |
buy | acheter | tr | P | FMDRVTI |
sell | vendre | tr | P | FMDRVTI |
write | écrire | tr | P | R |
see | voir | tr | PA | PAVTL | s
watch | regarder | tr | PA | PAV |
look at | regarder | tr | PA | PAVTL |
find | trouver | tr | PA | ATRI |
lose | perdre | tr | P | TR |
open | ouvrir | tr | P | TR |
close | fermer | tr | P | T |
clean | nettoyer | tr | P | TVL |
wash | laver | tr | P | TVA |
carry | porter | tr | PA | T |
bring | apporter | tr | PA | TFDR |
take | prendre | tr | P | TV |
want | vouloir | tr | PA | FMDTVA | s
like | aimer =0.7; apprécier =0.3 | tr | PA | PAFMDRVTLSGN | gs
love | adorer | tr | PA | AFMDRVTLSGN | gs
hate | détester | tr | PA | AFMDRVTLSGN | gs
prefer | préférer | tr | PA | FMDRVTLSGN | gs
draw | dessiner | tr | P | PAVTL |
paint | peindre | tr | P | TL |
visit | visiter | tr | P | L |
forget | oublier | tr | P | TRQ |
learn | apprendre | tr | P | NSQR |
understand | comprendre | tr | P | PNQR | s
know | connaître | tr | PA | PLS | s
help | aider | tr | PA | P |
meet | rencontrer | tr | P | P |
wait for | attendre | tr | PA | PV |
look for | chercher | tr | PA | PATRL |
listen to | écouter | tr | PA | PS |
answer | répondre à | tr | P | QPR |
call | appeler | tr | P | PA |
phone | téléphoner à | tr | P | P |
play | jouer à | tr | P | G |
play | jouer de | tr | P | I |
talk to | parler à | tr | PA | P |
speak | parler | tr | P | N | sb
leave | quitter | tr | PA | L |
enter | entrer* dans | tr | PA | L |
cross | traverser | tr | PA | L |
build | construire | tr | P | LV |
repair | réparer | tr | P | TV |
fix | réparer | tr | P | TV |
break | casser | tr | PA | T |
catch | attraper | tr | PA | AT |
feed | nourrir | tr | P | AP |
drive | conduire | tr | P | V |
sleep | dormir | in | PA | |
work | travailler | in | P | |
run | courir | in | PA | |
walk | marcher | in | PA | |
swim | nager | in | PA | |
dance | danser | in | PA | |
sing | chanter | in | PA | |
laugh | rire | in | P | |
smile | sourire | in | P | |
cry | pleurer | in | PA | |
wait | attendre | in | PA | |
play | jouer | in | PA | |
shout | crier | in | PA | |
study | étudier | in | P | |
win | gagner | in | PA | |
jump | sauter | in | PA | |
live | habiter =0.6; vivre =0.4 | in | PA | | s
stay | rester* | in | PA | |
go | aller* | go | PA | |
come | venir* | go | PA | |
return | rentrer* =0.5; retourner* =0.5 | go | PA | |
arrive | arriver* | go | PA | |
travel | voyager | go | P | |
leave | partir* | in | PA | |
fall | tomber* | in | PA | |
give | donner | gv | P | TFDR |
show | montrer | gv | P | TRV |
send | envoyer | gv | P | TRF |
lend | prêter | gv | P | TRV |
offer | offrir | gv | P | TFDR |
"""


class Noun:
    """One English noun with its French translations (options) and classes (tags)."""

    __slots__ = ("en", "en_plural", "options", "tags", "mass")

    def __init__(self, en, en_plural, options, tags):
        self.en = en
        self.en_plural = en_plural
        self.options = options
        self.tags = tags
        self.mass = "M" in tags or "D" in tags


class FrenchNoun:
    """`forms[gender] = (singular, plural)`; two genders when the person's sex decides."""

    __slots__ = ("forms", "genders")

    def __init__(self, forms):
        self.forms = forms
        self.genders = tuple(forms)


class Adjective:
    __slots__ = ("en", "options", "tags")

    def __init__(self, en, options, tags):
        self.en = en
        self.options = options
        self.tags = tags


class FrenchAdjective:
    __slots__ = ("forms", "prenominal")

    def __init__(self, forms, prenominal):
        self.forms = forms
        self.prenominal = prenominal


class Verb:
    """One English verb sense: forms, particle, frame and its French translations."""

    __slots__ = (
        "base",
        "third",
        "past",
        "gerund",
        "particle",
        "options",
        "frame",
        "subject_tags",
        "object_tags",
        "generic",
        "stative",
        "bare",
        "objects",
    )

    def __init__(self, base, particle, options, frame, subject_tags, object_tags, flags):
        self.base = base
        self.third = english_third_singular(base)
        self.past = english_past(base)
        self.gerund = english_gerund(base)
        self.particle = particle
        self.options = options
        self.frame = frame
        self.subject_tags = subject_tags
        self.object_tags = object_tags
        self.generic = "g" in flags
        self.stative = "s" in flags
        self.bare = "b" in flags
        self.objects = ()


class FrenchVerbSense:
    """A conjugated French verb plus the preposition its object takes (`parler à`)."""

    __slots__ = ("verb", "preposition")

    def __init__(self, verb, preposition):
        self.verb = verb
        self.preposition = preposition


def _rows(table):
    for line in table.strip().splitlines():
        yield [cell.strip() for cell in line.split("|")]


def _alternatives(spec, parse):
    """`"a =0.6; b =0.4"` -> ((parse("a"), 0.6), (parse("b"), 0.4))."""
    options = []
    for part in spec.split(";"):
        text, _, weight = part.partition("=")
        options.append((parse(text.strip()), float(weight) if weight else 1.0))
    total = sum(weight for _, weight in options)
    return tuple((value, weight / total) for value, weight in options)


def _french_noun(text):
    words = text.replace("_", " ").split()
    if ":" in words[0]:  # m:ami f:amie
        forms = {}
        for word in words:
            gender, _, form = word.partition(":")
            forms[gender] = _singular_plural(form)
        return FrenchNoun(forms)
    return FrenchNoun({words[-1]: _singular_plural(" ".join(words[:-1]))})


def _singular_plural(form):
    singular, _, plural = form.partition("/")
    return singular, plural or french_plural(singular)


def _french_adjective(text):
    prenominal = text.startswith("^")
    return FrenchAdjective(french_adjective_forms(text.lstrip("^").replace("_", " ")), prenominal)


def _french_verb(text):
    words = text.split()
    infinitive = words[0]
    auxiliary = "être" if infinitive.endswith("*") else "avoir"
    verb = conjugate(infinitive.rstrip("*"), auxiliary)
    return FrenchVerbSense(verb, words[1] if len(words) > 1 else "")


def _load_nouns():
    nouns = []
    for en, fr, tags in _rows(_NOUNS):
        singular, _, plural = en.partition("/")
        nouns.append(
            Noun(
                singular, plural or english_plural(singular), _alternatives(fr, _french_noun), tags
            )
        )
    return nouns


def _load_verbs(nouns):
    verbs = []
    for en, fr, frame, subject_tags, object_tags, flags in _rows(_VERBS):
        base, _, particle = en.partition(" ")
        verb = Verb(
            base, particle, _alternatives(fr, _french_verb), frame, subject_tags, object_tags, flags
        )
        verb.objects = tuple(n for n in nouns if any(tag in object_tags for tag in n.tags))
        verbs.append(verb)
    return verbs


NOUNS = _load_nouns()
NAMES = [(en, fr, gender) for en, fr, gender in _rows(_NAMES)]
ADJECTIVES = [
    Adjective(en, _alternatives(fr, _french_adjective), tags) for en, fr, tags in _rows(_ADJECTIVES)
]
VERBS = _load_verbs(NOUNS)


def nouns_with(tags):
    return [noun for noun in NOUNS if any(tag in tags for tag in noun.tags)]


_ADJECTIVES_FOR = {}


def adjectives_for(noun):
    """The adjectives that can describe `noun` (by class), computed once per noun."""
    found = _ADJECTIVES_FOR.get(noun.en)
    if found is None:
        found = _ADJECTIVES_FOR[noun.en] = [
            adjective for adjective in ADJECTIVES if any(t in adjective.tags for t in noun.tags)
        ]
    return found
