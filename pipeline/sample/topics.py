"""What the SYNTHETIC sample's invented posts talk about: topics, phrases, names, domains.

Plain data, kept apart from the generator so either can be read in one sitting.
"""

# topic: (weight, subjects, English templates, hashtags, word in es / fr / de / pt / ja)
TOPICS = {
    "climate": (
        11,
        "heatwaves|sea level rise|carbon emissions|the wildfire season|glacier melt|flooding|drought|"
        "renewable energy|coral bleaching|the carbon budget",
        "New report on {s}: climate scientists say the next decade matters most.|"
        "Our town's climate plan finally takes {s} seriously.|"
        "How is {s} changing where you live? Climate questions for the weekend.|"
        "Climate talks stall again over {s}.|Reading about {s} and climate adaptation this morning.|"
        "Volunteers met today to talk about {s}.|Is {s} the biggest climate story of the year?|"
        "Explainer: what {s} means for the climate and for farmers.",
        "climate|ClimateAction|ClimateCrisis|NetZero|Climate|CLIMATE|energy",
        "el clima|le climat|das Klima|o clima|気候",
    ),
    "football": (
        16,
        "the derby|the cup final|a late penalty|the new signing|the league table|extra time|the away fans",
        "What a match! {s} decided it.|Still thinking about {s}.|Tickets for {s} sold out in minutes.|"
        "Pundits can't stop talking about {s}.|Our keeper was brilliant during {s}.|Predictions for {s}?",
        "football|Football|matchday|FinalScore|UCL",
        "el fútbol|le football|Fußball|o futebol|サッカー",
    ),
    "cooking": (
        12,
        "sourdough|a lentil curry|fresh pasta|miso soup|a lemon tart|roasted vegetables|kimchi|a slow stew",
        "Tried making {s} tonight.|Recipe of the day: {s}.|Nothing beats {s} on a cold evening.|"
        "My first attempt at {s} went surprisingly well.|Any tips for {s}?",
        "cooking|recipe|foodie|HomeCooking",
        "la cocina|la cuisine|das Kochen|a culinária|料理",
    ),
    "space": (
        10,
        "the lunar lander|a new exoplanet|the Mars rover|tonight's meteor shower|the space station|"
        "a solar eclipse|the telescope images|a rocket launch",
        "Incredible news about {s}!|Watching {s} live right now.|Astronomers are excited about {s}.|"
        "Set an alarm for {s}.|The photos of {s} are stunning.",
        "space|astronomy|Space|spaceflight|NightSky",
        "el espacio|l'espace|die Raumfahrt|o espaço|宇宙",
    ),
    "elections": (
        14,
        "the debate|turnout|the polls|postal voting|the recount|campaign finance|the manifesto|the exit poll",
        "Everyone should read about {s} before voting.|A thread on {s}.|Reporters are asking about {s} again.|"
        "Big questions tonight about {s}.|Register to vote, then read up on {s}.",
        "election|vote|Election2024|democracy|polls",
        "las elecciones|les élections|die Wahl|as eleições|選挙",
    ),
    "music": (
        14,
        "the new album|a surprise gig|the festival lineup|that guitar solo|the world tour|a vinyl reissue",
        "Can't stop listening to {s}.|Who else is going to {s}?|Honestly {s} was unforgettable.|"
        "Review: {s} exceeded expectations.|Still buzzing after {s}.",
        "music|NowPlaying|livemusic|Music",
        "la música|la musique|die Musik|a música|音楽",
    ),
    "gardening": (
        9,
        "tomato seedlings|the compost heap|spring bulbs|the allotment|a rain barrel|pollinator plants|the herb bed",
        "Spent the morning on {s}.|Progress report on {s}.|Any advice about {s}?|So proud of {s} this year.",
        "gardening|GardenersWorld|allotment|plants",
        "el jardín|le jardinage|der Garten|a jardinagem|ガーデニング",
    ),
    "technology": (
        14,
        "the new phone|an open-source release|the chip shortage|a data breach|the AI model|battery design|"
        "a browser update",
        "Hands-on with {s}.|Everyone at work is discussing {s}.|A short review of {s}.|"
        "Security folks are worried about {s}.|Is {s} worth the hype?",
        "tech|AI|OpenSource|Tech|security",
        "la tecnología|la technologie|die Technik|a tecnologia|テクノロジー",
    ),
}
LANGS = ("en", "es", "fr", "de", "pt", "ja")
LANG_WEIGHTS = (80, 6, 5, 4, 3, 2)
LANG_TEMPLATES = {
    "es": "Hoy todos hablan de {k}.|¿Qué opináis sobre {k}?|Gran noticia sobre {k} esta mañana.",
    "fr": "Tout le monde parle de {k} aujourd'hui.|Que pensez-vous de {k} ?|Grande nouvelle sur {k} ce matin.",
    "de": "Heute reden alle über {k}.|Was haltet ihr von {k}?|Große Neuigkeiten zu {k} heute Morgen.",
    "pt": "Hoje todos falam de {k}.|O que vocês acham de {k}?|Grande notícia sobre {k} esta manhã.",
    "ja": "今日は{k}の話題でもちきり。|{k}についてどう思いますか？|{k}の大きなニュース。",
}
FIRST_NAMES = "maya tom ana li sam noor ivan zoe omar lea raj kim ben ada yuki paul ines max eva tariq".split()
LAST_NAMES = "rivers stone park berg silva okafor novak reyes chen ito moreau weber haddad costa lund".split()
DOMAIN_STARTS = "daily global green city open north bright metro planet river urban signal true next field".split()
DOMAIN_ENDS = "news post times wire journal report hub lab review observer".split()
